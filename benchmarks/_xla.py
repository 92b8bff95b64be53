"""XLA's GPU and TPU compilers run on a machine with neither: the devices, the reading.

jax's CUDA plugin and the ``libtpu`` wheel compile for a *described* device while the process
runs on the CPU platform ("deviceless AOT"): a ``GpuTargetConfigProto`` for the GPUs, a topology
name for the TPUs (:func:`device`; 8 of them for a slice or a node: :func:`slice_devices`). The
entry computation of a compiled step's optimized HLO (``call``/``while``/``conditional`` bodies
expanded, fusions not entered) gives (:func:`tally`):

  kernels  instructions that do work (fusions, multi-output ones included, copies, custom
           calls ...); on a TPU pure scalar instructions (the scalar unit) are left out
  passes   kernels that read or write an array at least as large as a given size
  traffic  operand + result bytes of the kernels (on a TPU only those in HBM, plus the bytes
           of the asynchronous HBM<->VMEM copies)
  cycles   on a TPU, XLA:TPU's estimated cycles summed over the kernels
and (:func:`collectives`) the collectives' count and bytes by kind. ``xla_step.py`` (the
optimizer step) and ``xla_train_step.py`` (the whole train step) share this module, their
optimizers (:func:`optimizers`) and their command line's output (:func:`preamble`,
:func:`section`, :func:`write`). The compilers: ``pip install -e '.[compilers]'``.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import json
import math
import os
import re
import shlex
import sys
from importlib import metadata

import _harness  # noqa: F401  (the repository's root on sys.path)
import jax
import optax

import qsgd_optax

INSTALL = "pip install -e '.[compilers]'"

# XLA's H100 SXM spec (xla/backends/gpu/target_config/specs/h100_sxm.txtpb), trimmed: with
# these fields every row here equals the full spec's (checked 2026-12-02). The H200 differs in
# memory: its size, and the bandwidth a real H200 reports (XLA:GPU's fusion cost model uses it).
H100 = """
gpu_device_info {
  threads_per_block_limit: 1024 threads_per_warp: 32 shared_memory_per_block: 49152
  shared_memory_per_core: 233472 threads_per_core_limit: 2048 core_count: 132
  fpus_per_core: 128 block_dim_limit_x: 2147483647 block_dim_limit_y: 65535
  block_dim_limit_z: 65535 memory_bandwidth: 3352320000000 l2_cache_size: 52428800
  clock_rate_ghz: 1.98 device_memory_size: 84942979072 shared_memory_per_block_optin: 232448
  cuda_compute_capability { major: 9 }
  registers_per_core_limit: 65536 registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info { major: 9 minor: 10 }
device_description_str: "NVIDIA H100 80GB HBM3"
"""
H200 = (
  H100.replace("memory_bandwidth: 3352320000000", "memory_bandwidth: 4916736000000")
  .replace("84942979072", "151397597184")
  .replace("NVIDIA H100 80GB HBM3", "NVIDIA H200 141GB HBM3e")
)
GPUS = {"h100": H100, "h200": H200}
TPUS = {"v5e": "v5e:2x2", "v6e": "v6e:2x2", "v5p": "v5p:2x2x1"}
TARGETS = [*GPUS, *TPUS, "cpu"]
# 8 chips: a TPU slice, or an 8-GPU node of one of GPUS.
SLICES = {"v5e-8": "v5e:2x4", "v6e-8": "v6e:2x4", "v5p-8": "v5p:2x2x2", "h100-8": "h100"}
SLICES["h200-8"] = "h200"
# libtpu without a TPU VM: no metadata server to ask, one worker, and no lock on a TPU that
# is not there (processes compiling at once, e.g. pytest-xdist's workers, all load libtpu).
TPU_ENV = {
  "TPU_SKIP_MDS_QUERY": "1",
  "TPU_WORKER_ID": "0",
  "TPU_WORKER_HOSTNAMES": "localhost",
  "ALLOW_MULTIPLE_LIBTPU_LOAD": "1",
}

DTYPES = ["float32", "bfloat16"]
CIRCUITS = {
  "default": {},
  "chain": {"entanglement": "chain"},
  "ring": {"entanglement": "ring"},
  "paper": {"entanglement": "chain", "layers": 2},
}

# Instructions that do no work of their own: they name, re-view or wait for buffers.
FREE = {
  "parameter", "constant", "get-tuple-element", "tuple", "bitcast", "opt-barrier",
  "after-all", "partition-id", "replica-id", "add-dependency", "domain",
  "copy-done", "slice-done", "async-done",
}  # fmt: skip
DMA = {"copy-start", "slice-start"}  # asynchronous copies between HBM and VMEM (TPU)
CONTAINERS = {"call", "while", "conditional"}
COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")


# ---------------------------------------------------------------- devices


def available(target: str) -> tuple[bool, str]:
  """Whether ``target``'s compiler is installed, and if not why (one that is installed but
  fails to load raises in ``device``)."""
  if target not in TARGETS:
    raise ValueError(f"unknown target {target!r}: one of {TARGETS}")
  plugin = {**dict.fromkeys(GPUS, "jax_plugins.xla_cuda12"), **dict.fromkeys(TPUS, "libtpu")}
  try:
    found = target == "cpu" or importlib.util.find_spec(plugin[target]) is not None
  except ModuleNotFoundError:  # no jax_plugins package at all
    found = False
  if found:
    return True, ""
  return False, f"no compiler for {target}: {plugin[target]} is missing ({INSTALL})"


@functools.cache
def device(target: str) -> jax.Device:
  """A compile-only device for ``target`` (one of TARGETS; "cpu" is this host's)."""
  from jax.experimental import topologies

  found, why = available(target)
  if not found:
    raise RuntimeError(why)
  if target == "cpu":
    return jax.devices("cpu")[0]
  for name, value in TPU_ENV.items() if target in TPUS else ():
    os.environ.setdefault(name, value)
  try:
    if target in GPUS:
      cfg = GPUS[target]
      topology = topologies.get_topology_desc(platform="cuda", target_config=cfg, topology="1x1x1")
    else:
      topology = topologies.get_topology_desc(topology_name=TPUS[target], platform="tpu")
  except Exception as e:
    raise RuntimeError(
      f"no deviceless {target} with jax {jax.__version__} (a matching compiler: {INSTALL}): "
      f"{type(e).__name__}: {str(e)[:300]}"
    ) from e
  return topology.devices[0]


@functools.cache
def slice_devices(name: str) -> tuple[jax.Device, ...]:
  """The 8 compile-only devices of slice ``name`` (one of SLICES)."""
  from jax.experimental import topologies

  what = SLICES[name]
  if what in GPUS:
    cfg = GPUS[what]
    return tuple(
      topologies.get_topology_desc(platform="cuda", target_config=cfg, topology="1x1x8").devices
    )
  for key, value in TPU_ENV.items():
    os.environ.setdefault(key, value)
  return tuple(topologies.get_topology_desc(topology_name=what, platform="tpu").devices)


# ---------------------------------------------------------------- optimizers


def optimizers(lr: float, composed: bool = True) -> dict[str, optax.GradientTransformation]:
  """AdamW, and for every circuit of CIRCUITS ``qsgd`` and (``composed``)
  ``chain(superpose, adamw)``, by label."""
  out = {"adamw": optax.adamw(lr)}
  for name, kw in CIRCUITS.items():
    circuit = qsgd_optax.Circuit(**kw)
    out[f"qsgd({name})"] = qsgd_optax.qsgd(lr, circuit=circuit)
    if composed:
      composition = optax.chain(qsgd_optax.superpose(circuit=circuit), optax.adamw(lr))
      out[f"superpose({name})+adamw"] = composition
  return out


# ---------------------------------------------------------------- reading the optimized HLO


def tally(hlo: str, tpu: bool, smallest: int) -> tuple[int, int, int, int]:
  """Kernels, passes (kernels touching an array of ``smallest`` elements or more), traffic in
  bytes and XLA:TPU's estimated cycles (0 elsewhere) of an optimized HLO module's entry."""
  kernels, passes, traffic, cycles = 0, 0, 0, 0
  for ins, arrays in entry_kernels(hlo):
    if ins["opcode"] in DMA:
      traffic += min((b for n, b, _ in arrays if n > 1), default=0)  # a slice: the smaller side
      continue
    if tpu and all(n <= 1 for n, _, _ in arrays) and ins["opcode"] not in ("fusion", "custom-call"):
      continue  # the scalar unit's work
    kernels += 1
    passes += any(n >= smallest for n, _, _ in arrays)
    traffic += sum(b for _, b, space in arrays if space == 0)
    if estimate := re.search(r'"estimated_cycles":"(\d+)"', ins["attrs"]):
      cycles += int(estimate.group(1))
  return kernels, passes, traffic, cycles


def collectives(hlo: str) -> dict[str, tuple[int, int]]:
  """Count and bytes (the larger of operand and result) of each kind of collective."""
  out = {kind: (0, 0) for kind in COLLECTIVES}
  for ins, arrays in entry_kernels(hlo):
    kind = ins["opcode"].removesuffix("-start")
    if kind in out:
      count, size = out[kind]
      out[kind] = (count + 1, size + max((b for _, b, _ in arrays), default=0))
  return out


def parse(hlo: str) -> tuple[dict[str, list[dict]], str]:
  """The computations of an HLO module, {name: [instruction]}, and the entry's name.
  An instruction is a dict of its name, type, opcode, operands and attributes."""
  comps, entry, current = {}, "", None
  for line in hlo.splitlines():
    head = re.match(r"(ENTRY )?%([\w.\-]+) \(.*\{$", line)
    if head:
      current = comps.setdefault(head.group(2), [])
      entry = head.group(2) if head.group(1) else entry
    elif line.startswith("}"):
      current = None
    elif current is not None and (m := re.match(r"\s*(?:ROOT )?%([\w.\-]+) = ", line)):
      rest = line[m.end() :]
      type_end = _closing(rest, 0) if rest.startswith("(") else rest.index(" ")
      typ, rest = rest[:type_end], rest[type_end:].lstrip()
      op = re.match(r"([\w\-]+)\(", rest)
      args_end = _closing(rest, op.end() - 1)
      operands = re.findall(r"%([\w.\-]+)", rest[op.end() : args_end])
      current.append(dict(name=m.group(1), type=typ, opcode=op.group(1), operands=operands,
                          attrs=rest[args_end:]))  # fmt: skip
  return comps, entry


def _closing(text: str, start: int) -> int:
  """The index just past the parenthesis that closes the one at ``text[start]``."""
  depth = 0
  for i in range(start, len(text)):
    depth += {"(": 1, ")": -1}.get(text[i], 0)
    if depth == 0:
      return i + 1
  raise ValueError(f"unbalanced: {text[start : start + 80]}")


def arrays(typ: str) -> list[tuple[int, int, int]]:
  """(elements, bytes, memory space) of each array in an HLO type, tuples flattened;
  memory space 0 is HBM, 1 a TPU's VMEM."""
  out = []
  for dt, dims, layout in re.findall(r"\b([a-z]+\d*\w*)\[([\d,]*)\](\{[^{}]*\})?", typ):
    n = math.prod(int(d) for d in dims.split(",") if d)
    bits = re.search(r"\d+", dt)  # f32, bf16, c64, f8e4m3fn ...; pred is a byte
    space = re.search(r"S\((\d+)\)", layout)
    out.append((n, n * int(bits.group()) // 8 if bits else n, int(space.group(1)) if space else 0))
  return out


def entry_kernels(hlo: str) -> list[tuple[dict, list[tuple[int, int, int]]]]:
  """The instructions that do work, reached from the entry computation without entering
  fusions, each with the arrays it reads and writes (see ``arrays``)."""
  comps, entry = parse(hlo)
  out = []

  def walk(name, seen):
    types = {ins["name"]: ins["type"] for ins in comps[name]}
    for ins in comps[name]:
      if ins["opcode"] in CONTAINERS:
        called = re.findall(r"(?:calls|to_apply|body|condition)=%([\w.\-]+)", ins["attrs"])
        branches = re.search(r"branch_computations=\{([^}]*)\}", ins["attrs"])
        called += re.findall(r"%([\w.\-]+)", branches.group(1)) if branches else []
        for c in called:
          if c not in seen:
            walk(c, seen | {c})
      elif ins["opcode"] not in FREE and not _reviews(ins):
        typs = [ins["type"], *(types.get(o, "") for o in ins["operands"])]
        out.append((ins, [a for t in typs for a in arrays(t)]))

  walk(entry, {entry})
  return out


def _reviews(ins: dict) -> bool:
  """Whether a custom call only re-views memory (XLA:TPU's ConcatBitcast)."""
  return ins["opcode"] == "custom-call" and 'custom_call_target="ConcatBitcast"' in ins["attrs"]


# ---------------------------------------------------------------- command line


def versions() -> dict[str, str]:
  """The versions of the compilers and libraries the rows depend on."""
  out = {}
  for name in ("jax", "jaxlib", "libtpu", "jax-cuda12-plugin", "optax"):
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      out[name] = "-"
  out["qsgd_optax"] = qsgd_optax.__version__
  return out


def preamble(script: str, argv, note: str = "") -> tuple[str, dict, list[str]]:
  """The command line as run, the versions, and the start of the markdown (printed)."""
  given = sys.argv[1:] if argv is None else argv
  command = shlex.join(["python", f"benchmarks/{script}", *given])
  found = versions()
  header = f"{datetime.date.today()}; " + ", ".join(f"{k} {v}" for k, v in found.items())
  print(header, "\n" + command, flush=True)
  return command, found, [header, "", f"`{command}`", *(["", note] if note else [])]


def section(md: list[str], title: str, header: list[str]) -> None:
  """Starts one setting's table, printed and in the markdown."""
  print(f"\n{title}", *header, sep="\n", flush=True)
  md += ["", f"### {title}", "", *header]


def write(out, md: list[str], payload: dict) -> None:
  """``<out>.md`` and ``<out>.json`` (with the date), where ``--out`` is given."""
  if out:
    with open(out + ".json", "w") as f:
      json.dump(dict(date=str(datetime.date.today()), **payload), f, indent=1)
    with open(out + ".md", "w") as f:
      f.write("\n".join(md) + "\n")
