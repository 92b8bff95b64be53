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


def test_sharded_example_runs_on_one_device():
  """As on a machine with one GPU: the mesh is built from the devices present."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run(
    [sys.executable, os.path.join(EXAMPLES, "sharded_finetune.py")],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "1 devices, mesh {'data': 1, 'fsdp': 1}" in result.stdout, result.stdout[-500:]
