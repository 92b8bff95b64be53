import os
import sys

import jax
import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def x64():
  """Runs the test with float64 enabled."""
  with jax.enable_x64(True):
    yield
