"""Skips for optional dependencies: only where the condition can change."""

import pytest

from qsgd_optax.backends import pennylane


def pennylane_or_skip():
  """Skips the calling test where PennyLane is missing or cannot run with the
  installed jax, with the library's own reason (which names both versions)."""
  try:
    pennylane.check_installed()
  except ImportError as e:
    pytest.skip(str(e))
