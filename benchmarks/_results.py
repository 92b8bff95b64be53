"""How every benchmark hands in its results: ``<out>/<name>.json`` (the raw
numbers) and ``<out>/<name>.md`` (the table quoted in the README), the table
also printed."""

import json
import os


def save(out: str, name: str, data, md: str, indent: int | None = 1) -> None:
  """Writes ``data`` as JSON and ``md`` as markdown under ``out``; prints ``md``."""
  text = json.dumps(data, indent=indent)  # fails before any file is touched
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, name + ".json"), "w") as f:
    f.write(text)
  with open(os.path.join(out, name + ".md"), "w") as f:
    f.write(md + "\n")
  print(md)
