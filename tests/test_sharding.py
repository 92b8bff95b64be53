"""Launches the multi-device tests, the sharded example among them, with 8 simulated CPU devices."""

import os
import subprocess
import sys

from conftest import CPU_COLLECTIVES

HERE = os.path.dirname(os.path.abspath(__file__))


@CPU_COLLECTIVES
def test_multidevice_suite():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "pytest",
      "-q",
      "-p",
      "no:cacheprovider",
      "-o",
      "addopts=",
      os.path.join(HERE, "multidevice"),
    ],
    env=env,
    capture_output=True,
    text=True,
    check=False,
  )
  print(result.stdout[-5000:], result.stderr[-5000:])
  assert result.returncode == 0, result.stdout[-5000:]
  assert " passed" in result.stdout and "skipped" not in result.stdout
