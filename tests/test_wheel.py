"""The wheel holds the package and nothing else: not the study, the tests, the benchmarks or
the examples (they stay in the repository)."""

import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_wheel_is_the_package(tmp_path):
  subprocess.run(
    [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), ROOT],
    check=True,
    capture_output=True,
  )
  (wheel,) = tmp_path.glob("qsgd_optax-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  tops = {name.split("/")[0] for name in names}
  assert tops == {"qsgd_optax", wheel.name.split("-py")[0] + ".dist-info"}, tops
  packages = {os.path.dirname(n) for n in names if n.endswith(".py")}
  assert packages == {"qsgd_optax", "qsgd_optax/_src", "qsgd_optax/backends", "qsgd_optax/nn"}
  assert "qsgd_optax/py.typed" in names
