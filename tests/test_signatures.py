"""The circuit's options are written once (``qsgd_optax.Circuit``), every
public function's docstring documents exactly its arguments, and every public
class's exactly its fields or ``__init__`` arguments."""

import dataclasses
import inspect
import re

import pytest

import qsgd_optax
from qsgd_optax import backends, grouping, nn

TAKES_A_CIRCUIT = [qsgd_optax.superpose, qsgd_optax.qsgd, qsgd_optax.scale_by_qsgd]


@pytest.mark.parametrize("fn", TAKES_A_CIRCUIT, ids=lambda f: f.__name__)
def test_the_circuit_is_one_argument(fn):
  """Each factory takes the circuit as one value and repeats none of its options."""
  params = inspect.signature(fn).parameters
  assert params["circuit"].default == qsgd_optax.Circuit()
  options = {field.name for field in dataclasses.fields(qsgd_optax.Circuit)}
  assert not options & set(params), (fn.__name__, options & set(params))


def documented(doc, section):
  """The names a Google-style section (``Args``, ``Attributes``, ...) lists."""
  found = re.search(rf"\n\s*{re.escape(section)}:\n(.*?)(?:\n\s*\n|\Z)", doc, re.S)
  if found is None:
    return []
  lines = found.group(1).splitlines()
  indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
  return [
    line.strip().split(":")[0]
    for line in lines
    if line.strip() and len(line) - len(line.lstrip()) == indent
  ]


def documented_args(doc):
  """The argument names of a Google-style ``Args:`` section."""
  return documented(doc, "Args")


MODULES = [
  qsgd_optax,
  backends,
  backends.analytic,
  backends.pauli,
  backends.statevector,
  backends.pennylane,
  grouping,
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


# Every public class: NamedTuples and dataclasses list their fields under
# ``Attributes:``, the others (Flax NNX modules, ...) their ``__init__``
# arguments under ``Args:``, as optax's and flax's reference pages do.
CLASSES = [
  qsgd_optax.Gate,
  qsgd_optax.Gates,
  qsgd_optax.ScaleByQSGDState,
  qsgd_optax.SuperposeState,
  qsgd_optax.Circuit,
  qsgd_optax.UpdateChange,
  backends.Backend,
  nn.ScoreCircuit,
  nn.MultiHeadAttention,
  nn.Block,
  nn.Transformer,
  nn.CausalLM,
  backends.pauli.Compiled,
  backends.pauli.TermLimitError,
]


CLASS_MODULES = [qsgd_optax, backends, grouping, nn, backends.pauli]


def test_every_public_class_is_checked():
  public = [getattr(m, name) for m in CLASS_MODULES for name in m.__all__]
  assert {c for c in public if inspect.isclass(c)} == set(CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_class_docstrings_document_every_field_or_argument(cls):
  """One ``Attributes:`` line per field, or one ``Args:`` line per ``__init__``
  argument, in order, no other; and an example."""
  doc = inspect.getdoc(cls)
  if dataclasses.is_dataclass(cls):
    assert documented(doc, "Attributes") == [f.name for f in dataclasses.fields(cls)]
  elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
    assert documented(doc, "Attributes") == list(cls._fields)
  else:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    want = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert documented(doc, "Args") == want
  assert ">>> " in doc, cls.__name__


def test_the_check_reads_an_attributes_section():
  doc = """Summary.

  Attributes:
    a: first,
      continued.
    b: second.

  Examples:
    >>> 1
    1
  """
  assert documented(inspect.cleandoc(doc), "Attributes") == ["a", "b"]
  assert documented(inspect.cleandoc(doc), "Args") == []
