"""Hooks for every test the README's command collects, doctests in the package included."""

import importlib.util

import pytest


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
