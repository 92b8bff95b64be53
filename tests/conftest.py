import os
import runpy
import sys

# One BLAS thread per process, set before numpy loads (workers and subprocesses
# inherit it): OpenBLAS threads spin, and with a pytest-xdist worker per core
# a 256 x 256 matrix-vector product of the dense reference took 8 ms, not 0.05.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ.setdefault(_var, "1")

import jax  # noqa: E402
import pytest  # noqa: E402

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
# joined by collectives share one pytest-xdist worker: two such jobs at once on
# 2 cores starved XLA:CPU's collective rendezvous past its 40 s limit.
CPU_COLLECTIVES = pytest.mark.xdist_group("cpu_collectives")


@pytest.hookimpl(tryfirst=True)  # Before xdist reads the groups.
def pytest_collection_modifyitems(items):
  """Keeps the tests that share a module- or session-scoped fixture on one
  pytest-xdist worker (``--dist loadgroup``, set in pyproject.toml): split
  over workers, each would build the fixture again (test_multiprocess's
  2-process job, test_experiments' training runs)."""
  for item in items:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:  # Doctests.
      continue
    # Only fixtures of the test's own module: pytest's session-scoped
    # tmp_path_factory, behind every tmp_path, is cheap and shared anyway.
    shared = any(
      defs[-1].scope != "function" and defs[-1].func.__module__ == item.module.__name__
      for defs in info.name2fixturedefs.values()
      if defs
    )
    if shared and item.get_closest_marker("xdist_group") is None:
      item.add_marker(pytest.mark.xdist_group(item.module.__name__))
