import os
import runpy
import sys

import jax
import pytest

sys.path.insert(0, os.path.dirname(__file__))


def enable_x64(on=True):
  """``jax.enable_x64`` (jax 0.8 and later; before, ``jax.experimental.enable_x64``)."""
  enable = getattr(jax, "enable_x64", None)
  if enable is None:
    from jax.experimental import enable_x64 as enable
  return enable(on)


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name, monkeypatch, capsys):
  """Runs ``examples/name`` as ``python examples/name`` would, in this process
  (``runpy``: the interpreter and its imports are already here); returns its stdout."""
  path = os.path.join(EXAMPLES, name)
  monkeypatch.setattr(sys, "argv", [path])
  runpy.run_path(path, run_name="__main__")
  return capsys.readouterr().out


@pytest.fixture
def x64():
  """Runs the test with float64 enabled."""
  with enable_x64(True):
    yield


# Tests that start processes of simulated CPU devices (or several processes)
# joined by collectives are the distributed suite, run by its own command
# (python -m pytest -m distributed; pyproject.toml leaves it out of the default
# run). They share one pytest-xdist worker: two such jobs at once on 2 cores
# starved XLA:CPU's collective rendezvous past its 40 s limit.
CPU_COLLECTIVES = [pytest.mark.distributed, pytest.mark.xdist_group("cpu_collectives")]


def cpu_collectives(test):
  """Marks ``test`` as one of the distributed suite (:data:`CPU_COLLECTIVES`)."""
  for mark in CPU_COLLECTIVES:
    test = mark(test)
  return test
