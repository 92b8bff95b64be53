"""qsgd on JAX's multi-process runtime, and checkpoints that move between topologies.

Starts a 2-process ``jax.distributed`` job on 127.0.0.1 (Gloo CPU collectives,
4 CPU devices per process, one global ``data x fsdp = 2 x 4`` mesh), trains a
small transformer with ``qsgd`` (a circuit with ``shots=32``), params and optimizer state sharded
over both processes, and saves an Orbax checkpoint halfway. Then one process
with 8 devices and one with 2 devices (other shardings) restore it and
continue. The worker is tests/multiprocess/mp_worker.py; every process is
killed if anything fails or runs past its time limit.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from conftest import CPU_COLLECTIVES

pytestmark = CPU_COLLECTIVES

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "multiprocess", "mp_worker.py")
STEPS, SPLIT = 6, 3
TIMEOUT_S = 300  # Per phase; about 30-60 s each on 2 busy cores.


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(runs, tmp):
  """Starts every ``(name, args)`` worker at once and waits for all of them.

  A worker that fails, or the time limit, kills the others: a process whose
  peer died would otherwise wait in a collective. Returns the exit codes and
  the stderr tails."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  # The repository (the package) and examples/ (its _loopback binding).
  path = [ROOT, os.path.join(ROOT, "examples"), env.get("PYTHONPATH", "")]
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(path))
  procs = {}
  with contextlib.ExitStack() as files:
    try:
      for name, args in runs:
        procs[name] = subprocess.Popen(
          [sys.executable, WORKER, *args],
          stdout=files.enter_context(open(tmp / f"{name}.out", "w")),
          stderr=files.enter_context(open(tmp / f"{name}.err", "w")),
          env=env,
          cwd=ROOT,
        )
      deadline = time.monotonic() + TIMEOUT_S
      while any(p.poll() is None for p in procs.values()):
        if time.monotonic() > deadline or any(p.poll() for p in procs.values()):
          break
        time.sleep(0.2)
    finally:
      for p in procs.values():
        if p.poll() is None:
          p.kill()  # SIGKILL: jax's preemption notifier catches SIGTERM.
        p.wait()
  tails = {n: (tmp / f"{n}.err").read_text()[-3000:] for n in procs}
  return {n: p.returncode for n, p in procs.items()}, tails


def run_or_fail(runs, tmp, retries=1):
  for attempt in range(retries + 1):
    codes, tails = launch(runs(), tmp)
    if all(c == 0 for c in codes.values()):
      return
    busy = any("Address already in use" in t for t in tails.values())
    if not busy or attempt == retries:
      pytest.fail(f"workers failed or timed out: {codes}\n" + "\n".join(tails.values()))


def load(path):
  with np.load(path) as f:
    return dict(f)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("multiprocess")
  ckpt = tmp / "ckpt"
  common = ["--steps", str(STEPS), "--split", str(SPLIT)]
  start = time.monotonic()

  def two_processes():
    port = str(free_port())
    return [
      (
        f"p{i}",
        [
          *("--num-processes", "2", "--process-id", str(i), "--port", port),
          *("--devices", "4", "--mesh", "2,4", "--save", str(ckpt), "--hlo"),
          *common,
          *("--out", str(tmp / "multi")),
        ],
      )
      for i in range(2)
    ]

  run_or_fail(two_processes, tmp)
  multi_s = time.monotonic() - start
  # Both single-process runs train from scratch and from the checkpoint.
  # "2,1": 2 devices, every param replicated (fsdp has one member), each
  # device still sums 4 rows of the batch.
  single = [
    (f"single{n}", ["--devices", str(n), "--mesh", mesh, "--restore", str(ckpt), *common])
    for n, mesh in ((8, "2,4"), (2, "2,1"))
  ]
  run_or_fail(lambda: [(n, [*a, "--out", str(tmp / n)]) for n, a in single], tmp, retries=0)
  print(f"2-process job {multi_s:.1f} s, both restores {time.monotonic() - start - multi_s:.1f} s")
  out = {}
  for name in ("multi", "single8", "single2"):
    d = tmp / name
    out[name] = {f[:-4]: load(d / f) for f in os.listdir(d) if f.endswith(".npz")}
    with open(d / "meta.json") as f:
      out[name]["meta"] = json.load(f)
  return out


def inexact_leaves(tree):
  """Every params and optimizer-state leaf of a float or complex dtype."""
  return {k: v for k, v in tree.items() if k != "losses" and np.issubdtype(v.dtype, np.inexact)}


def max_diff(a, b):
  assert a.keys() == b.keys()
  return max(float(np.max(np.abs(a[k] - b[k]))) for k in inexact_leaves(a))


def assert_identical(a, b):
  assert a.keys() == b.keys()
  for k in a:
    if k != "losses":
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_job_spans_two_processes(job):
  meta = job["multi"]["meta"]
  assert meta["process_count"] == 2
  assert meta["device_count"] == 8 and meta["local_device_count"] == 4
  assert meta["mesh"] == {"data": 2, "fsdp": 4}
  assert not meta["fully_addressable"]  # Each process holds only its shards.
  assert job["single8"]["meta"]["process_count"] == job["single2"]["meta"]["process_count"] == 1


def test_two_processes_equal_one_process(job):
  multi, single = job["multi"]["uninterrupted"], job["single8"]["uninterrupted"]
  diff = max_diff(multi, single)
  names = sorted(inexact_leaves(multi))
  assert any(".mu" in k for k in names) and any(".nu" in k for k in names), names
  print(f"max |2 processes - 1 process| over {len(names)} inexact leaves {names}: {diff:.3g}")
  assert diff <= 1e-6
  np.testing.assert_allclose(multi["losses"], single["losses"], atol=1e-6)
  for k, v in multi.items():
    if v.dtype.kind in "iu":  # Step counts and the PRNG key.
      np.testing.assert_array_equal(v, single[k], err_msg=k)
  assert len(multi["losses"]) == STEPS


def test_params_and_state_keep_their_shardings(job):
  for name in ("multi", "single8", "single2"):
    assert job[name]["meta"]["shardings_kept"], name


def test_update_adds_no_collectives(job):
  """Groups of 4 qubits align with every shard (32 entries of ``attn``'s
  last axis per device): qsgd's update compiles to AdamW's collectives, none."""
  found = job["multi"]["meta"]["collectives"]
  print(json.dumps(found, indent=1))
  adamw, qsgd = Counter(found["adamw"]["update"]), Counter(found["qsgd"]["update"])
  assert not qsgd - adamw, qsgd - adamw
  # The control: groups of 3 straddle devices, and the counting sees it.
  assert Counter(found["misaligned"]["update"]) - adamw


def test_shots_add_only_scalar_loop_predicates(job):
  """With shots, jax.random.binomial's rejection loops stop when every entry
  is accepted: one all-reduce of a scalar per loop per leaf, no data moved."""
  found = job["multi"]["meta"]["collectives"]
  extra = Counter(found["qsgd_shots"]["step"]) - Counter(found["adamw"]["step"])
  assert set(extra) <= {"all-reduce pred[]"}, extra
  assert not Counter(found["adamw"]["step"]) - Counter(found["qsgd_shots"]["step"])


def assert_within_rounding(a, b):
  """Equal to within 1e-6 of each leaf's largest entry (float32 rounding)."""
  assert a.keys() == b.keys()
  for k in inexact_leaves(a):
    scale = float(np.max(np.abs(b[k]))) if b[k].size else 0.0
    np.testing.assert_array_less(np.abs(a[k] - b[k]), 1e-6 * scale + 1e-30, err_msg=k)
  for k, v in a.items():
    if k != "losses" and k not in inexact_leaves(a):
      np.testing.assert_array_equal(v, b[k], err_msg=k)


@pytest.mark.parametrize("target", ["single8", "single2"])
def test_restore_continues_bit_identically(job, target):
  """Bit-identical into the same device layout (8 devices, one process). Into
  2 devices, within float32 rounding only: on jax 0.12 XLA:CPU compiles
  AdamW's own elementwise update of ``attn``, the leaf whose shard changes its
  last axis (32 columns on 2 x 4, 128 on 2 x 1), with other roundings (1867 of
  4096 entries by about 1 ulp for optax.adamw alone, with equal gradients; the
  circuit and the gradients are bit-identical: docs/reliability.md)."""
  saved, restored = job["multi"]["at_split"], job[target]["restored_at_split"]
  assert_identical(restored, saved)  # The checkpoint round-trips exactly.
  full, resumed = job["multi"]["uninterrupted"], job[target]["restored"]
  if target == "single8":
    assert_identical(resumed, full)
    np.testing.assert_array_equal(resumed["losses"], full["losses"][SPLIT:])
  else:
    assert_within_rounding(resumed, full)
    np.testing.assert_allclose(resumed["losses"], full["losses"][SPLIT:], rtol=1e-6)
  counts = [k for k in full if k.endswith(".count")]
  assert counts and all(int(resumed[k]) == STEPS for k in counts)
  # The key moved: shots were drawn fresh every step after the checkpoint.
  (key,) = [k for k in full if k.endswith(".key")]  # Wherever qsgd's chain keeps it.
  assert not np.array_equal(saved[key], full[key])
