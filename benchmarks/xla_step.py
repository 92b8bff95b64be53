"""XLA's GPU and TPU compilers on one optimizer step, run on a machine with neither.

Each optimizer's jitted step (``update`` + ``optax.apply_updates``, params and state donated)
is compiled for a described device (``_xla.py`` says how) and read off its optimized HLO:

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
      --opt adamw --opt 'qsgd(chain)' --out benchmarks/results/xla_step-h200-v5e-gpt2
"""

from __future__ import annotations

import argparse
import math
import time
from typing import NamedTuple

import _xla
import jax
import optax
from _xla import DTYPES, TARGETS, device

TREES = {
  "4096x12288": [(4096, 12288)],  # ~50M parameters in one leaf
  "768x50257": [(768, 50257)],  # a last axis that 4 does not divide
  "gpt2": [(50257, 768), (768, 2304), (768, 768), (768, 3072), (3072, 768), (768,)],
}


class Row(NamedTuple):
  """What one compiled step costs (see the module doc); ratios are of the params' bytes."""

  kernels: int
  passes: int
  traffic: float
  temp: float
  seconds: float  # to lower and compile


def optimizers() -> dict[str, optax.GradientTransformation]:
  """AdamW, and for every circuit ``qsgd`` and ``chain(superpose, adamw)``, by label."""
  return _xla.optimizers(1e-3)


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
  kernels, passes, traffic, _ = _xla.tally(compiled.as_text(), tpu, smallest)
  temp = compiled.memory_analysis().temp_size_in_bytes
  return Row(kernels, passes, traffic / params_bytes, temp / params_bytes, seconds)


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
  command, versions, md = _xla.preamble("xla_step.py", argv)
  rows = []
  for target, dev in devices.items():
    for tree in args.tree or list(TREES):
      for dtype in args.dtype or DTYPES:
        _xla.section(md, f"{target} ({dev.device_kind}), {tree}, {dtype}", table([]))
        block = []
        for label in labels:
          row = analyse(opts[label], TREES[tree], dev, dtype)
          key = dict(target=target, tree=tree, dtype=dtype, optimizer=label)
          block.append(key | row._asdict())
          md.append(table(block)[-1])
          print(md[-1] + f"  ({row.seconds:.1f} s)", flush=True)
        rows += block
  _xla.write(args.out, md, dict(versions=versions, command=command, rows=rows))
  return rows


if __name__ == "__main__":
  main()
