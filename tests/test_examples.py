"""Every example runs to completion as a script.

Single-process examples run as ``__main__`` in the test's process
(``conftest.run_example``); the sharded ones on 8 devices run in
tests/multidevice (a process with 8 simulated devices), the multi-host one as
its own processes, as from the command line (both in the distributed suite,
``python -m pytest -m distributed``), and so does the Tunix one, which skips
where Tunix is not installed.
"""

import math
import os
import re
import subprocess
import sys

import jax
import pytest

from conftest import EXAMPLES, cpu_collectives, run_example

MULTIPLE_DEVICES = {"sharded_finetune.py", "explicit_sharding.py", "multihost_finetune.py"}
TUNIX = "tunix_finetune.py"
IN_PROCESS = sorted(
  f
  for f in os.listdir(EXAMPLES)
  if f.endswith(".py") and not f.startswith("_") and f not in MULTIPLE_DEVICES | {TUNIX}
)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_example_runs(name, monkeypatch, capsys):
  out = run_example(name, monkeypatch, capsys)
  assert "step" in out or "loss" in out


def test_tunix_example_trains_checkpoints_and_resumes():
  """In its own process: importing Tunix's models changes a flax setting for the process."""
  pytest.importorskip("tunix", reason="Tunix is not installed: pip install -e '.[tunix]'")
  result = subprocess.run(
    [sys.executable, os.path.join(EXAMPLES, TUNIX)], capture_output=True, text=True, timeout=600
  )
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  saved = re.search(r"checkpoints at steps \[([\d, ]+)\]", out)
  resumed = re.search(r"resumed from step (\d+), schedule count (\d+)", out)
  assert saved and resumed, out
  # The trainer resumed from its latest checkpoint, the optimizer's state with it.
  assert int(resumed[1]) == int(resumed[2]) == max(map(int, saved[1].split(","))) > 0, out
  steps = [int(s) for s in re.findall(r"^step +(\d+)", out, re.M)]
  losses = [float(x) for x in re.findall(r"loss (\S+)", out)]
  assert steps[-1] > int(resumed[1]) and len(losses) == len(steps), out
  assert all(map(math.isfinite, losses)) and losses[-1] < losses[0], out


def test_sharded_example_runs_on_one_device(monkeypatch, capsys):
  """As on a machine with one GPU: the mesh is built from the devices present
  (this process has one CPU device; the flag keeps the example from asking for 8)."""
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  out = run_example("sharded_finetune.py", monkeypatch, capsys)
  assert "1 devices, mesh {'data': 1, 'fsdp': 1}" in out, out[-500:]


def test_explicit_sharding_example_runs_on_one_device(monkeypatch, capsys):
  """The explicit-sharding example on a 1 x 1 mesh, as on one accelerator."""
  if not hasattr(jax.sharding, "AxisType"):
    pytest.skip(f"jax {jax.__version__} has no explicit sharding (AxisType)")
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  out = run_example("explicit_sharding.py", monkeypatch, capsys)
  assert "1 devices, mesh {'data': 1, 'fsdp': 1}" in out, out[-500:]


@cpu_collectives  # Several processes joined by collectives.
def test_multihost_example_runs():
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  result = subprocess.run(
    [sys.executable, os.path.join(EXAMPLES, "multihost_finetune.py")],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step" in result.stdout
