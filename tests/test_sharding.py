"""Launches the multi-device tests, the sharded example among them, with 8 simulated CPU devices."""

import os
import subprocess
import sys

from conftest import cpu_collectives

HERE = os.path.dirname(os.path.abspath(__file__))


@cpu_collectives
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


@cpu_collectives
def test_groups_keep_collective_jobs_on_one_worker(request):
  """Under ``--dist loadgroup`` (pyproject.toml) a grouped test's id carries its
  group; without it, the collective jobs and module fixtures spread over workers
  (pytest 9.2 with pytest-xdist 3.8 drops the groups silently)."""
  if os.environ.get("PYTEST_XDIST_WORKER") and request.config.getoption("loadgroup", False):
    assert request.node.nodeid.endswith("@cpu_collectives"), request.node.nodeid
