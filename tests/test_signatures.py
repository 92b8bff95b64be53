"""Each circuit option's default is written once (``CircuitOptions``), and
every public function's docstring documents exactly its arguments."""

import dataclasses
import inspect
import re

import pytest

import qsgd_optax
from qsgd_optax import backends, diagnostics, experiments, modulation
from qsgd_optax.superpose import CircuitOptions

TAKES_OPTIONS = [qsgd_optax.superpose, qsgd_optax.qsgd, qsgd_optax.scale_by_qsgd]


@pytest.mark.parametrize("fn", TAKES_OPTIONS, ids=lambda f: f.__name__)
def test_circuit_options_agree_with_the_one_definition(fn):
  params = inspect.signature(fn).parameters
  for field in dataclasses.fields(CircuitOptions):
    assert field.name in params, (fn.__name__, field.name)
    assert params[field.name].default == field.default, (fn.__name__, field.name)


def documented_args(doc):
  """The argument names of a Google-style ``Args:`` section."""
  section = re.search(r"\n\s*Args:\n(.*?)(?:\n\s*\n|\Z)", doc, re.S)
  if section is None:
    return []
  lines = section.group(1).splitlines()
  indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
  return [
    line.strip().split(":")[0]
    for line in lines
    if line.strip() and len(line) - len(line.lstrip()) == indent
  ]


MODULES = [
  qsgd_optax,
  backends,
  backends.analytic,
  backends.pauli,
  backends.statevector,
  backends.pennylane,
  diagnostics,
  modulation,
  experiments,
]
PUBLIC = sorted(
  {getattr(m, name) for m in MODULES for name in m.__all__ if inspect.isfunction(getattr(m, name))},
  key=lambda f: f"{f.__module__}.{f.__name__}",
)


@pytest.mark.parametrize("fn", PUBLIC, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_docstring_args_match_the_signature(fn):
  """One ``Args:`` line per argument, in the signature's order, no other."""
  want = [
    name
    for name, p in inspect.signature(fn).parameters.items()
    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
  ]
  assert documented_args(inspect.getdoc(fn)) == want
  for section in ("Returns:", "Examples:", ">>> "):
    assert section in inspect.getdoc(fn), (fn.__name__, section)


def test_the_check_reads_an_args_section():
  def f(a, b=1):
    """Summary.

    Args:
      a: first,
        continued.
      b: second.
    """

  assert documented_args(inspect.getdoc(f)) == ["a", "b"]
