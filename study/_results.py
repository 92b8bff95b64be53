"""How the study's experiments hand in their results: ``<out>/<name>.json`` (the raw
numbers) and ``<out>/<name>.md`` (the table quoted in the docs), the table also printed.
By default under ``study/results/`` (its ``README.md`` is the index)."""

import json
import os
from typing import Any, Optional

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def save(out: str, name: str, data: Any, md: str, indent: Optional[int] = 1) -> None:
  """Writes ``data`` as JSON and ``md`` as markdown under ``out``; prints ``md``."""
  text = json.dumps(data, indent=indent)  # fails before any file is touched
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, name + ".json"), "w") as f:
    f.write(text)
  with open(os.path.join(out, name + ".md"), "w") as f:
    f.write(md + "\n")
  print(md)
