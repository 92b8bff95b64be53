"""Skips for optional dependencies: only where the dependency is not installed."""

import importlib.util

import pytest

from qsgd_optax.backends import pennylane


def pennylane_problem():
  """Why PennyLane's tests cannot run here (it is not installed), or ``None``.

  An installed PennyLane that does not run with this jax is an error, not a
  skip: ``check_installed`` raises it, naming both versions.
  """
  if importlib.util.find_spec("pennylane") is None:
    return "PennyLane is not installed: pip install -e '.[dev]' (or '.[pennylane]')"
  pennylane.check_installed()
  return None


def pennylane_or_skip(module=False):
  """Skips the calling test (or module) where PennyLane is not installed."""
  reason = pennylane_problem()
  if reason is not None:
    pytest.skip(reason, allow_module_level=module)
