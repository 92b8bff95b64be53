"""Every ```python code block of README.md runs.

Each block runs on its own with ``exec`` in a fresh namespace, so every block must be complete
(its own imports and data). A block that needs something that cannot be installed here must say
so on the line right above its fence, as ``<!-- readme-test: skip <the reason> -->``; its test is
then reported as skipped with that reason. No block is skipped otherwise.
"""

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
MAX_LINES = 120  # The README is a front page; the studies live in docs/

# An opening fence whose info string starts with python/py/python3, possibly indented (in a list).
FENCE = re.compile(
  r"^([ \t]*)```[ \t]*(?:python3?|py)\b[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S
)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s+(.+?)\s*-->\s*$")


def _blocks():
  text = README.read_text(encoding="utf-8")
  blocks = []
  for match in FENCE.finditer(text):
    line = text.count("\n", 0, match.start()) + 1
    above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
    skip = SKIP.search(above)
    code = textwrap.dedent(match.group(2))
    blocks.append(pytest.param(code, skip.group(1) if skip else None, id=f"README.md:{line}"))
  return blocks


BLOCKS = _blocks()


def test_readme_has_python_blocks():
  # Guards the extraction itself: a README whose blocks the pattern no longer finds would
  # otherwise pass with nothing run.
  assert BLOCKS, "no ```python block found in README.md"


def test_readme_length():
  lines = README.read_text(encoding="utf-8").count("\n")
  assert lines <= MAX_LINES, (
    f"README.md has {lines} lines; at most {MAX_LINES} (move detail to docs/)"
  )


@pytest.mark.parametrize(("code", "skip_reason"), BLOCKS)
def test_readme_block_runs(code, skip_reason):
  if skip_reason is not None:
    pytest.skip(f"marked in README.md: {skip_reason}")
  exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
