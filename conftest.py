"""Hooks for every test the README's command collects, doctests in the package included."""

import pytest


def pytest_runtest_setup(item):
  """Tests of PennyLane (marked ``pennylane``, or named for it) and the
  doctests that run it skip, with the library's reason, only where PennyLane
  is missing or cannot run with the installed jax. (At setup, not as a skip
  marker: pytest cannot report a marker's skip on a doctest item.)"""
  named = "pennylane" in item.nodeid.lower() or "drawing.py" in item.nodeid
  if named or item.get_closest_marker("pennylane"):
    from qsgd_optax.backends import pennylane

    try:
      pennylane.check_installed()
    except ImportError as e:
      pytest.skip(str(e))
