"""XLA's GPU and TPU compilers on one optimizer step, run on a machine with neither.

jax's CUDA plugin and the ``libtpu`` wheel compile for a *described* device while this
process runs on the CPU platform ("deviceless AOT"): a ``GpuTargetConfigProto`` for the
GPUs, a topology name for the TPUs. Each optimizer's jitted step (``update`` +
``optax.apply_updates``, params and state donated) is compiled for such a device, and
the entry computation of the optimized HLO (``call``/``while``/``conditional`` bodies
expanded, fusions not entered) gives:

  kernels  instructions that do work (fusions, multi-output ones included, copies, custom
           calls ...); on a TPU pure scalar instructions (the scalar unit) are left out
  passes   kernels that read or write an array at least as large as the smallest leaf
  traffic  operand + result bytes of the kernels over the params' bytes (on a TPU only
           those in HBM, plus the bytes of the asynchronous HBM<->VMEM copies). AdamW's
           floor is 7.0x: it reads p, g, mu and nu and writes p, mu and nu
  temp     XLA's temporary bytes (``memory_analysis()``) over the params' bytes

The compilers: ``pip install -e '.[compilers]'``. Run (the CLI runs jax on the CPU, as
``JAX_PLATFORMS=cpu`` would; libtpu is told not to look for a TPU VM):

  python benchmarks/xla_step.py                          # every target, tree, dtype, optimizer
  python benchmarks/xla_step.py --target h200 --target v5e --tree gpt2 --dtype float32 \\
      --opt adamw --opt 'qsgd(chain)' --out benchmarks/results/xla-step
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.util
import json
import math
import os
import re
import shlex
import sys
import time
from importlib import metadata
from typing import NamedTuple

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
# libtpu without a TPU VM: no metadata server to ask, one worker, and no lock on a TPU that
# is not there (processes compiling at once, e.g. pytest-xdist's workers, all load libtpu).
TPU_ENV = {
  "TPU_SKIP_MDS_QUERY": "1",
  "TPU_WORKER_ID": "0",
  "TPU_WORKER_HOSTNAMES": "localhost",
  "ALLOW_MULTIPLE_LIBTPU_LOAD": "1",
}

TREES = {
  "4096x12288": [(4096, 12288)],  # ~50M parameters in one leaf
  "768x50257": [(768, 50257)],  # a last axis that 4 does not divide
  "gpt2": [(50257, 768), (768, 2304), (768, 768), (768, 3072), (3072, 768), (768,)],
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


class Row(NamedTuple):
  """What one compiled step costs (see the module doc); ratios are of the params' bytes."""

  kernels: int
  passes: int
  traffic: float
  temp: float
  seconds: float  # to lower and compile


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


# ---------------------------------------------------------------- optimizers


def optimizers() -> dict[str, optax.GradientTransformation]:
  """AdamW, and for every circuit ``qsgd`` and ``chain(superpose, adamw)``, by label."""

  def circuit(kw):  # the keywords before qsgd_optax.Circuit existed, the object after
    return {"circuit": qsgd_optax.Circuit(**kw)} if hasattr(qsgd_optax, "Circuit") else kw

  out = {"adamw": optax.adamw(1e-3)}
  for name, kw in CIRCUITS.items():
    out[f"qsgd({name})"] = qsgd_optax.qsgd(1e-3, **circuit(kw))
    composed = optax.chain(qsgd_optax.superpose(**circuit(kw)), optax.adamw(1e-3))
    out[f"superpose({name})+adamw"] = composed
  return out


# ---------------------------------------------------------------- compiling


def leaves(shapes, dtype="float32") -> dict[str, jax.ShapeDtypeStruct]:
  """The params tree of the compiled steps: one named leaf per shape."""
  return {f"p{i:02d}": jax.ShapeDtypeStruct(s, dtype) for i, s in enumerate(shapes)}


def compile_step(tx, shapes, dev, dtype="float32") -> jax.stages.Compiled:
  """The donated step of ``tx`` on ``leaves(shapes, dtype)``, compiled for ``dev``."""
  sharding = jax.sharding.SingleDeviceSharding(dev)
  place = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding)
  params = jax.tree.map(place, leaves(shapes, dtype))
  state = jax.tree.map(place, jax.eval_shape(tx.init, params))

  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params).compile()


def analyse(tx, shapes, target_device, dtype="float32") -> Row:
  """Compiles ``tx``'s step for ``target_device`` and reads the Row off it."""
  start = time.perf_counter()
  compiled = compile_step(tx, shapes, target_device, dtype)
  seconds = time.perf_counter() - start
  return read(compiled, shapes, dtype, target_device.platform == "tpu", seconds)


def read(compiled, shapes, dtype, tpu: bool, seconds: float = 0.0) -> Row:
  """The Row of a compiled step of leaves of ``shapes`` (``tpu``: the TPU's rules)."""
  params_bytes = sum(math.prod(s) for s in shapes) * jax.numpy.dtype(dtype).itemsize
  smallest = min(math.prod(s) for s in shapes)
  kernels, passes, traffic, _ = tally(compiled.as_text(), tpu, smallest)
  temp = compiled.memory_analysis().temp_size_in_bytes
  return Row(kernels, passes, traffic / params_bytes, temp / params_bytes, seconds)


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


# ---------------------------------------------------------------- optimized HLO


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


# ---------------------------------------------------------------- CLI


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


def table(rows: list[dict]) -> list[str]:
  """A markdown table of the rows of one target, tree and dtype."""
  base = next((r["traffic"] for r in rows if r["optimizer"] == "adamw"), None)
  lines = [
    "| optimizer | kernels | passes | traffic | temp x params | traffic x adamw |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in rows:
    relative = f"{r['traffic'] / base:.2f}" if base else "-"
    lines.append(
      f"| {r['optimizer']} | {r['kernels']} | {r['passes']} | {r['traffic']:.2f}x | "
      f"{r['temp']:.2f} | {relative} |"
    )
  return lines


def main(argv=None) -> list[dict]:
  """The command line (see the module doc); returns the rows."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--target", action="append", choices=TARGETS, help="default: all but cpu")
  parser.add_argument("--tree", action="append", choices=list(TREES), help="default: all")
  parser.add_argument("--dtype", action="append", choices=DTYPES, help="default: all")
  parser.add_argument("--opt", action="append", help="an optimizer's label (default: all)")
  parser.add_argument("--out", help="write <out>.md and <out>.json")
  args = parser.parse_args(argv)
  jax.config.update("jax_platforms", "cpu")  # this process runs on the host, whatever it has
  devices = {t: device(t) for t in args.target or TARGETS[:-1]}  # before jax starts a backend
  opts = optimizers()
  labels = args.opt or list(opts)
  if unknown := set(labels) - set(opts):
    parser.error(f"unknown --opt {sorted(unknown)}: one of {list(opts)}")
  given = sys.argv[1:] if argv is None else argv
  command = shlex.join(["python", "benchmarks/xla_step.py", *given])
  header = f"{datetime.date.today()}; " + ", ".join(f"{k} {v}" for k, v in versions().items())
  print(header, "\n" + command, flush=True)
  rows, md = [], [header, "", f"`{command}`"]
  for target, dev in devices.items():
    for tree in args.tree or list(TREES):
      for dtype in args.dtype or DTYPES:
        title = f"{target} ({dev.device_kind}), {tree}, {dtype}"
        print(f"\n{title}", *table([]), sep="\n", flush=True)
        block = []
        for label in labels:
          row = analyse(opts[label], TREES[tree], dev, dtype)
          key = dict(target=target, tree=tree, dtype=dtype, optimizer=label)
          block.append(key | row._asdict())
          print(table(block)[-1] + f"  ({row.seconds:.1f} s)", flush=True)
        rows += block
        md += ["", f"### {title}", "", *table(block)]
  if args.out:
    with open(args.out + ".json", "w") as f:
      json.dump(dict(date=str(datetime.date.today()), versions=versions(), command=command,
                     rows=rows), f, indent=1)  # fmt: skip
    with open(args.out + ".md", "w") as f:
      f.write("\n".join(md) + "\n")
  return rows


if __name__ == "__main__":
  main()
