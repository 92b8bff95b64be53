"""Every example runs to completion from the command line."""

import os
import subprocess
import sys

import pytest
from conftest import CPU_COLLECTIVES

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


# These simulate 8 devices or start several processes (see conftest.CPU_COLLECTIVES).
COLLECTIVES = {"sharded_finetune.py", "multihost_finetune.py"}
NAMES = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))


@pytest.mark.parametrize(
  "name", [pytest.param(n, marks=CPU_COLLECTIVES) if n in COLLECTIVES else n for n in NAMES]
)
def test_example_runs(name):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  result = subprocess.run(
    [sys.executable, os.path.join(EXAMPLES, name)],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step" in result.stdout or "loss" in result.stdout
