"""XLA's GPU and TPU compilers on a whole train step of a causal LM, run on a machine with neither.

What users pay is the whole step, not the optimizer's alone: XLA fuses and schedules the update
with the forward and backward passes. This compiles, for a described device (``_xla.py`` says
how), the step as users run it (``_lm.py``'s models and step: next-token cross-entropy,
``jax.value_and_grad``, ``tx.update`` and ``optax.apply_updates`` in one ``jax.jit``, params and
optimizer state donated): GPT-2 small and a Llama with SmolLM2-135M's shapes (``--layers``
overrides the depth), batches 1x512 and 8x1024, params in float32 or bfloat16.

Each row is relative to ``optax.adamw``'s whole step on the same target, model, batch and dtype:
  kernels  instructions that do work (``_xla.tally``'s rule), and the difference
  traffic  extra bytes the kernels move, in params-bytes (pb), and as a share of AdamW's step
  temp     extra temporaries (``memory_analysis()``), in params-bytes
  peak     arguments + temporaries, over AdamW's
  cycles   TPU only: XLA:TPU's estimated cycles summed over the kernels, over AdamW's; the
           compiler's estimate, not a timing

Run (``pip install -e '.[compilers]'``; every figure is compiler analysis):
  python benchmarks/xla_train_step.py --target h200 --target v5e --model gpt2 --batch 1x512
  python benchmarks/xla_train_step.py --out benchmarks/results/xla_train_step   # everything
Sharded over a slice (``--slice``: 8 TPU chips or an 8-GPU node, compiled without them), in a
``--layout``, with JAX's automatic or explicit sharding (``--sharding``):
  fsdp       every matrix split on its first axis over the 8 chips, the batch over the same
  fsdp-last  every parameter split on its last axis (the one ``qsgd`` groups along)
  tp         data 2 x model 4: column-parallel matrices (and their biases) split on their last
             axis over ``model``, row-parallel ones and the embedding on their first; the batch
             over ``data``
The optimizer state is sharded like the params and ``out_shardings`` keeps both; the vocabulary
is padded to a multiple of 128 (GPT-2's 50304) so that it splits evenly. Under explicit sharding
the loss runs as under automatic (``jax.sharding.auto_axes``) and the update as users' code does.
Each row adds the collectives (count and bytes, by kind) and reads per chip: pb is then the bytes
of one chip's share of the params.
  python benchmarks/xla_train_step.py --slice v5e-8 --layout fsdp-last --layers 2 --batch 8x512
CI's reduced case (``tests/test_accelerators.py``): ``--model gpt2-mini --batch 8x128``.
The same steps timed on this machine's device: ``benchmarks/train_step.py --model gpt2``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import _lm
import _xla
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _lm import BATCHES, MEASURED, MEASURED_BATCHES, MODELS, is_shape, param_shapes
from jax.sharding import PartitionSpec as P

from qsgd_optax.grouping import GROUPINGS, forced


def optimizers() -> dict[str, optax.GradientTransformation]:
  """AdamW and ``qsgd`` with every circuit of ``_xla.CIRCUITS``, by label."""
  return _xla.optimizers(1e-4, composed=False)


# ---------------------------------------------------------------- on one device


class Row(NamedTuple):
  """What one compiled train step costs, in bytes and XLA:TPU's estimated cycles."""

  kernels: int
  traffic: float  # bytes
  temp: float  # bytes
  args: float  # bytes
  cycles: int  # TPU; 0 elsewhere
  params: float  # the params' bytes
  seconds: float  # to lower and compile


def compile_train_step(cfg, tx, batch, dev, dtype) -> jax.stages.Compiled:
  """The donated train step of ``cfg`` with ``tx`` at ``batch`` (b, t), compiled for ``dev``."""
  sharding = jax.sharding.SingleDeviceSharding(dev)
  place = lambda s, dt: jax.ShapeDtypeStruct(s, dt, sharding=sharding)
  shapes = param_shapes(cfg, batch[1])
  params = jax.tree.map(lambda s: place(s, dtype), shapes, is_leaf=is_shape)
  state = jax.tree.map(lambda a: place(a.shape, a.dtype), jax.eval_shape(tx.init, params))
  tokens = place((batch[0], batch[1] + 1), jnp.int32)
  step = jax.jit(_lm.train_step(cfg, tx), donate_argnums=(0, 1))
  return step.lower(params, state, tokens).compile()


def read(compiled: jax.stages.Compiled, tpu: bool, params_bytes: float, seconds=0.0) -> Row:
  """The Row of a compiled step (``_xla.tally``'s reading of kernels and traffic)."""
  kernels, _, traffic, cycles = _xla.tally(compiled.as_text(), tpu, smallest=1)
  memory = compiled.memory_analysis()
  return Row(
    kernels, traffic, memory.temp_size_in_bytes, memory.argument_size_in_bytes, cycles,
    params_bytes, seconds,
  )  # fmt: skip


def analyse(model: str, tx, batch: str, target_device, dtype: str, layers=None) -> Row:
  """Compiles the train step and reads its Row."""
  cfg = _lm.config(model, layers)
  params_bytes = _lm.params_bytes(cfg, BATCHES[batch][1], dtype)
  start = time.perf_counter()
  compiled = compile_train_step(cfg, tx, BATCHES[batch], target_device, jnp.dtype(dtype))
  seconds = time.perf_counter() - start
  return read(compiled, target_device.platform == "tpu", params_bytes, seconds)


def relative(row: Row, adamw: Row) -> dict[str, float]:
  """A row against AdamW's: extra kernels, traffic (pb and share), temp (pb), peak and cycles."""
  pb = row.params
  return dict(
    kernels=row.kernels - adamw.kernels,
    traffic_pb=(row.traffic - adamw.traffic) / pb,
    traffic_share=row.traffic / adamw.traffic - 1,
    temp_pb=(row.temp - adamw.temp) / pb,
    peak=(row.args + row.temp) / (adamw.args + adamw.temp),
    cycles=row.cycles / adamw.cycles if adamw.cycles else float("nan"),
  )


# ---------------------------------------------------------------- sharded over a slice

LAYOUTS = ("fsdp", "fsdp-last", "tp")
COLUMN_PARALLEL = {"qkv", "fc", "q", "kv", "gate_up"}  # split on the last axis under tp
ROW_PARALLEL = {"out", "proj", "o", "down", "wte", "embed"}  # on the first


def layout_mesh(devices, layout: str, explicit: bool) -> jax.sharding.Mesh:
  """The mesh of ``layout``: (data 2, model 4) for tp, else (fsdp 8)."""
  shape, names = ((2, len(devices) // 2), ("data", "model"))
  if layout != "tp":
    shape, names = (len(devices),), ("fsdp",)
  kind = jax.sharding.AxisType.Explicit if explicit else jax.sharding.AxisType.Auto
  return jax.sharding.Mesh(np.array(devices).reshape(shape), names, axis_types=(kind,) * len(names))


def param_spec(path, shape: tuple[int, ...], layout: str) -> P:
  """Where ``layout`` puts the parameter at ``path`` (see the module doc)."""
  names = {getattr(k, "key", None) for k in path}
  rest = (None,) * (len(shape) - 1)
  if layout == "fsdp":
    return P("fsdp", *rest) if len(shape) == 2 else P()
  if layout == "fsdp-last":
    return P(*rest, "fsdp")
  if names & COLUMN_PARALLEL:
    return P(*rest, "model")
  return P("model", None) if names & ROW_PARALLEL and len(shape) == 2 else P()


def sharded_cfg(model: str, layers=None) -> dict:
  cfg = _lm.config(model, layers)
  return cfg | {"vocab": -(-cfg["vocab"] // 128) * 128}


def compile_sharded(cfg, tx, batch, mesh, layout, dtype, explicit) -> jax.stages.Compiled:
  """The donated train step, its params and state sharded by ``layout`` over ``mesh``."""
  named = lambda spec: jax.sharding.NamedSharding(mesh, spec)
  shapes = param_shapes(cfg, batch[1])
  specs = jax.tree_util.tree_map_with_path(
    lambda path, s: param_spec(path, s, layout), shapes, is_leaf=is_shape
  )
  param_shardings = jax.tree.map(named, specs)
  params = jax.tree.map(
    lambda s, sh: jax.ShapeDtypeStruct(s, dtype, sharding=sh), shapes, param_shardings,
    is_leaf=is_shape,
  )  # fmt: skip
  state_shapes = jax.eval_shape(tx.init, params)
  state_shardings = optax.tree_utils.tree_map_params(
    tx, lambda _, sh: sh, state_shapes, param_shardings, transform_non_params=lambda _: named(P())
  )
  state = jax.tree.map(
    lambda a, sh: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sh), state_shapes, state_shardings
  )
  tokens = jax.ShapeDtypeStruct(
    (batch[0], batch[1] + 1), jnp.int32, sharding=named(P("data" if layout == "tp" else "fsdp"))
  )
  step = jax.jit(
    _lm.train_step(cfg, tx, explicit),
    donate_argnums=(0, 1),
    out_shardings=(param_shardings, state_shardings, named(P())),
  )
  with jax.set_mesh(mesh) if explicit else contextlib.nullcontext():
    return step.lower(params, state, tokens).compile()


def analyse_sharded(model, tx, batch, slice_name, layout, dtype, explicit, layers=None):
  """Compiles the sharded train step and reads its Row (per chip) and collectives."""
  cfg = sharded_cfg(model, layers)
  mesh = layout_mesh(_xla.slice_devices(slice_name), layout, explicit)
  per_chip = sum(
    math.prod(jax.sharding.NamedSharding(mesh, param_spec(path, s, layout)).shard_shape(s))
    for path, s in jax.tree_util.tree_leaves_with_path(
      param_shapes(cfg, BATCHES[batch][1]), is_leaf=is_shape
    )
  ) * jnp.dtype(dtype).itemsize  # fmt: skip
  start = time.perf_counter()
  compiled = compile_sharded(cfg, tx, BATCHES[batch], mesh, layout, jnp.dtype(dtype), explicit)
  seconds = time.perf_counter() - start
  tpu = mesh.devices.flat[0].platform == "tpu"
  return read(compiled, tpu, per_chip, seconds), _xla.collectives(compiled.as_text())


# ---------------------------------------------------------------- CLI

HEADER = [
  "| optimizer | kernels | extra kernels | step traffic | extra traffic | extra temp | peak | "
  "TPU cycles |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
SHARDED_HEADER = [
  "| optimizer | kernels | extra kernels | extra traffic | extra temp | TPU cycles | collectives "
  "| beyond AdamW's |",
  "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
]


def line(label: str, row: Row, rel: dict) -> str:
  cycles = "-" if math.isnan(rel["cycles"]) else f"x{rel['cycles']:.3f}"
  return (
    f"| {label} | {row.kernels} | {rel['kernels']:+d} | {row.traffic / row.params:.2f} pb | "
    f"{rel['traffic_pb']:+.2f} pb ({100 * rel['traffic_share']:+.1f} %) | "
    f"{rel['temp_pb']:+.2f} pb | x{rel['peak']:.3f} | {cycles} |"
  )


def sharded_line(label: str, row: Row, rel: dict, counts, base) -> str:
  cycles = "-" if math.isnan(rel["cycles"]) else f"x{rel['cycles']:.3f}"
  return (
    f"| {label} | {row.kernels} | {rel['kernels']:+d} | {rel['traffic_pb']:+.2f} pb "
    f"({100 * rel['traffic_share']:+.1f} %) | {rel['temp_pb']:+.2f} pb | {cycles} | "
    f"{_collectives_text(counts)} | {_collectives_text(counts, base)} |"
  )


def _collectives_text(counts: dict[str, tuple[int, int]], base=None) -> str:
  parts = []
  for kind, (n, size) in counts.items():
    if base is not None:
      n, size = n - base[kind][0], size - base[kind][1]
      if n or size:
        parts.append(f"{kind} {n:+d} ({size / 2**20:+.1f} MiB)")
    elif n:
      parts.append(f"{kind} {n} ({size / 2**20:.1f} MiB)")
  return ", ".join(parts) or "none"


def main(argv=None) -> list[dict]:
  """The command line (see the module doc); returns the rows."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--target", action="append", choices=_xla.TARGETS[:-1])
  parser.add_argument("--model", action="append", choices=list(MODELS))
  parser.add_argument("--batch", action="append", choices=list(BATCHES))
  parser.add_argument("--dtype", action="append", choices=_xla.DTYPES)
  parser.add_argument("--opt", action="append", help="an optimizer's label (default: all)")
  parser.add_argument("--layers", type=int, help="override the models' depth")
  parser.add_argument("--out", help="write <out>.md and <out>.json")
  parser.add_argument("--slice", action="append", choices=list(_xla.SLICES), help="sharded over 8")
  parser.add_argument("--layout", action="append", choices=LAYOUTS, help="with --slice")
  parser.add_argument("--sharding", action="append", choices=["auto", "explicit"])
  parser.add_argument("--grouping", choices=sorted(GROUPINGS), help="force a formulation")
  args = parser.parse_args(argv)
  jax.config.update("jax_platforms", "cpu")  # this process runs on the host, whatever it has
  todo = settings(args)  # the devices before jax starts a backend
  opts = optimizers()
  labels = ["adamw", *[o for o in args.opt or opts if o != "adamw"]]
  if unknown := set(labels) - set(opts):
    parser.error(f"unknown --opt {sorted(unknown)}: one of {list(opts)}")
  note = "Compiler analysis, not timings" + ("; per chip." if args.slice else ".")
  command, versions, md = _xla.preamble("xla_train_step.py", argv, note)
  layers = f", {args.layers} layers" if args.layers else ""
  rows = []
  with forced(args.grouping):
    for where, compile_row in todo:
      _xla.section(md, ", ".join(where.values()) + layers, SHARDED_HEADER if args.slice else HEADER)
      base = None
      for label in labels:
        row, counts = compile_row(opts[label])
        base = base or (row, counts)
        rel = relative(row, base[0])
        if counts is None:
          md.append(line(label, row, rel))
        else:
          md.append(sharded_line(label, row, rel, counts, base[1]))
        print(md[-1] + f"  ({row.seconds:.0f} s)", flush=True)
        rows.append(where | {"optimizer": label} | row._asdict() | rel)
        if counts is not None:
          rows[-1]["collectives"] = counts
  payload = dict(versions=versions, command=command, layers=args.layers, rows=rows)
  _xla.write(args.out, md, payload)
  return rows


def settings(args) -> list[tuple[dict[str, str], Callable]]:
  """Each setting of the command line, as its keys and a function that compiles one
  optimizer's step there into its Row and collectives (``None`` on one device): on one device
  of each ``--target``, or (``--slice``) sharded over 8 chips."""
  models, dtypes, layers, out = args.model or list(MEASURED), args.dtype, args.layers, []
  if not args.slice:
    for target in args.target or _xla.TARGETS[:-1]:
      dev = _xla.device(target)
      for model in models:
        for batch in args.batch or list(MEASURED_BATCHES):
          for dtype in dtypes or _xla.DTYPES:
            where = dict(target=target, model=model, batch=batch, dtype=dtype)
            out.append((where, functools.partial(_on_device, where, dev, layers)))
    return out
  for name in args.slice:
    for layout in args.layout or LAYOUTS:
      for sharding in args.sharding or ["auto"]:
        for model in models:
          for batch in args.batch or ["8x512"]:
            for dtype in dtypes or ["float32"]:
              where = dict(slice=name, layout=layout, sharding=sharding, model=model,
                           batch=batch, dtype=dtype)  # fmt: skip
              out.append((where, functools.partial(_sharded, where, layers)))
  return out


def _on_device(where: dict, dev, layers, tx) -> tuple[Row, None]:
  return analyse(where["model"], tx, where["batch"], dev, where["dtype"], layers), None


def _sharded(where: dict, layers, tx) -> tuple[Row, dict]:
  return analyse_sharded(
    where["model"], tx, where["batch"], where["slice"], where["layout"], where["dtype"],
    where["sharding"] == "explicit", layers,
  )  # fmt: skip


if __name__ == "__main__":
  main()
