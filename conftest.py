"""Hooks for every test here: the README's command (tests/ and the package's doctests) and the
study's (study/)."""

import importlib.util
import os

# One BLAS thread per process, set before numpy loads (workers and subprocesses
# inherit it): OpenBLAS threads spin, and with a pytest-xdist worker per core
# a 256 x 256 matrix-vector product of the dense reference took 8 ms, not 0.05.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ.setdefault(_var, "1")

import pytest  # noqa: E402


def pytest_runtest_setup(item):
  """Tests of PennyLane (marked ``pennylane``, or named for it) and the
  doctests that run it skip only where PennyLane is not installed; where it is
  but cannot run with the installed jax they fail, with the library's error
  naming both versions. (At setup, not as a skip marker: pytest cannot report
  a marker's skip on a doctest item.)"""
  named = "pennylane" in item.nodeid.lower() or "drawing.py" in item.nodeid
  if named or item.get_closest_marker("pennylane"):
    if importlib.util.find_spec("pennylane") is None:
      pytest.skip("PennyLane is not installed: pip install -e '.[dev]' (or '.[pennylane]')")
    from qsgd_optax.backends import pennylane

    pennylane.check_installed()


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
