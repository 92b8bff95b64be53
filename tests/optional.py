"""Skips for optional dependencies: only where the condition can change."""

import pytest

from qsgd_optax.backends import pennylane


def pennylane_problem():
  """Why PennyLane cannot run here (missing, or too old for this jax), or ``None``."""
  try:
    pennylane.check_installed()
  except ImportError as e:
    return str(e)
  return None


def pennylane_or_skip(module=False):
  """Skips the calling test (or module) where PennyLane cannot run, with the
  library's own reason (which names both versions)."""
  reason = pennylane_problem()
  if reason is not None:
    pytest.skip(reason, allow_module_level=module)
