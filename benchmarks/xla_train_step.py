"""XLA's GPU and TPU compilers on a whole train step of a causal LM, run on a machine with neither.

What users pay is the whole step, not the optimizer's alone: XLA fuses and schedules the update
with the forward and backward passes. This compiles, for a described device (``xla_step.py``
says how), the step as users run it: next-token cross-entropy, ``jax.value_and_grad``,
``tx.update`` and ``optax.apply_updates`` in one ``jax.jit``, params and optimizer state donated.

Models (plain jax, no framework; ``--layers`` overrides the depth):
  gpt2   GPT-2 small: 12 layers, d 768, 12 heads, MLP 3072, vocab 50257, learned positions,
         LayerNorm, GELU, tied embedding (124M parameters)
  llama  a Llama with SmolLM2-135M's shapes: 30 layers, d 576, 9 heads of 64, 3 KV heads
         (grouped), SwiGLU 1536, RMSNorm, rotary positions, vocab 49152, tied embedding (135M
         parameters; a size whose AdamW step fits one chip of every target in float32)
Batches: 1x512 (fine-tuning) and 8x1024 (pretraining). Params in float32 or bfloat16 (the model
computes in the params' dtype, the loss in float32).

Each row is relative to ``optax.adamw``'s whole step on the same target, model, batch and dtype:
  kernels  instructions that do work (``xla_step.read``'s rule), and the difference
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
With ``--time`` it times the same steps on this machine's device instead (a GPU: medians of
interleaved steps, against AdamW's; ``benchmarks/gpu_check.sh`` runs it):
  python benchmarks/xla_train_step.py --time --model gpt2 --batch 1x512 --dtype float32
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import math
import os
import shlex
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xla_step
from jax.sharding import PartitionSpec as P

import qsgd_optax
from qsgd_optax.grouping import GROUPINGS, forced

MODELS = {
  "gpt2": dict(kind="gpt2", layers=12, d=768, heads=12, kv_heads=12, mlp=3072, vocab=50257),
  "llama": dict(kind="llama", layers=30, d=576, heads=9, kv_heads=3, mlp=1536, vocab=49152),
}
BATCHES = {"1x512": (1, 512), "8x1024": (8, 1024), "8x512": (8, 512)}
CIRCUITS = {name: qsgd_optax.Circuit(**kw) for name, kw in xla_step.CIRCUITS.items()}


def optimizers() -> dict[str, optax.GradientTransformation]:
  """AdamW and ``qsgd`` with every circuit of ``xla_step.CIRCUITS``, by label."""
  out = {"adamw": optax.adamw(1e-4)}
  out.update({f"qsgd({name})": qsgd_optax.qsgd(1e-4, circuit=c) for name, c in CIRCUITS.items()})
  return out


# ---------------------------------------------------------------- models


def param_shapes(cfg: dict, context: int) -> dict[str, Any]:
  """The model's parameter tree as shapes."""
  d, hd, mlp = cfg["d"], cfg["d"] // cfg["heads"], cfg["mlp"]
  if cfg["kind"] == "gpt2":
    layer = {
      "ln1": {"scale": (d,), "bias": (d,)},
      "qkv": {"w": (d, 3 * d), "b": (3 * d,)},
      "out": {"w": (d, d), "b": (d,)},
      "ln2": {"scale": (d,), "bias": (d,)},
      "fc": {"w": (d, mlp), "b": (mlp,)},
      "proj": {"w": (mlp, d), "b": (d,)},
    }
    top = {"wte": (cfg["vocab"], d), "wpe": (context, d), "ln_f": {"scale": (d,), "bias": (d,)}}
  else:
    kv = cfg["kv_heads"] * hd
    layer = {
      "attn_norm": (d,),
      "q": (d, d),
      "kv": (d, 2 * kv),
      "o": (d, d),
      "mlp_norm": (d,),
      "gate_up": (d, 2 * mlp),
      "down": (mlp, d),
    }
    top = {"embed": (cfg["vocab"], d), "norm": (d,)}
  return {**top, "layers": [layer] * cfg["layers"]}


def _layer_norm(x, p):
  x32 = x.astype(jnp.float32)
  mean = x32.mean(-1, keepdims=True)
  y = (x32 - mean) * jax.lax.rsqrt(x32.var(-1, keepdims=True) + 1e-5)
  return (y * p["scale"] + p["bias"]).astype(x.dtype)


def _rms_norm(x, scale):
  x32 = x.astype(jnp.float32)
  y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + 1e-5)
  return (y * scale).astype(x.dtype)


def _attention(q, k, v):
  """Causal attention, (batch, time, heads, head_dim); KV heads shared by groups of heads."""
  groups = q.shape[2] // k.shape[2]
  k, v = (jnp.repeat(a, groups, axis=2) for a in (k, v))
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) / math.sqrt(q.shape[-1])
  t = q.shape[1]
  logits = jnp.where(jnp.tril(jnp.ones((t, t), bool)), logits, -1e30)
  return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits).astype(v.dtype), v)


def _rotary(x, positions):
  half = x.shape[-1] // 2
  freq = 100_000.0 ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angle = positions[:, None] * freq  # (time, half)
  cos, sin = jnp.cos(angle)[None, :, None], jnp.sin(angle)[None, :, None]
  x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)


def logits(cfg: dict, params: dict, tokens: jax.Array) -> jax.Array:
  """The model's next-token logits, (batch, time, vocab)."""
  b, t = tokens.shape
  heads, hd = cfg["heads"], cfg["d"] // cfg["heads"]
  split = lambda a, n: a.reshape(b, t, n, hd)
  if cfg["kind"] == "gpt2":
    x = params["wte"][tokens] + params["wpe"][:t]
    for p in params["layers"]:
      qkv = _layer_norm(x, p["ln1"]) @ p["qkv"]["w"] + p["qkv"]["b"]
      q, k, v = (split(a, heads) for a in jnp.split(qkv, 3, -1))
      x = x + _attention(q, k, v).reshape(b, t, -1) @ p["out"]["w"] + p["out"]["b"]
      h = jax.nn.gelu(_layer_norm(x, p["ln2"]) @ p["fc"]["w"] + p["fc"]["b"])
      x = x + h @ p["proj"]["w"] + p["proj"]["b"]
    return _layer_norm(x, params["ln_f"]) @ params["wte"].T
  positions = jnp.arange(t, dtype=jnp.float32)
  x = params["embed"][tokens]
  for p in params["layers"]:
    h = _rms_norm(x, p["attn_norm"])
    k, v = (split(a, cfg["kv_heads"]) for a in jnp.split(h @ p["kv"], 2, -1))
    q = _rotary(split(h @ p["q"], heads), positions)
    x = x + _attention(q, _rotary(k, positions), v).reshape(b, t, -1) @ p["o"]
    gate, up = jnp.split(_rms_norm(x, p["mlp_norm"]) @ p["gate_up"], 2, -1)
    x = x + (jax.nn.silu(gate) * up) @ p["down"]
  return _rms_norm(x, params["norm"]) @ params["embed"].T


def train_step(cfg: dict, tx: optax.GradientTransformation, explicit: bool = False):
  """The step users jit: loss and grads, the update, the apply. ``explicit``: the loss runs
  as under automatic sharding (the model is written for it), the rest under explicit."""

  def loss(params, tokens):
    out = logits(cfg, params, tokens[:, :-1]).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(out, tokens[:, 1:]).mean()

  if explicit:
    loss = jax.sharding.auto_axes(loss, out_sharding=P())

  def step(params, state, tokens):
    value, grads = jax.value_and_grad(loss)(params, tokens)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, value

  return step


# ---------------------------------------------------------------- compiling and reading


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
  params = jax.tree.map(lambda s: place(s, dtype), shapes, is_leaf=lambda s: isinstance(s, tuple))
  state = jax.tree.map(lambda a: place(a.shape, a.dtype), jax.eval_shape(tx.init, params))
  tokens = place((batch[0], batch[1] + 1), jnp.int32)
  step = jax.jit(train_step(cfg, tx), donate_argnums=(0, 1))
  return step.lower(params, state, tokens).compile()


def read(compiled: jax.stages.Compiled, tpu: bool, params_bytes: float, seconds=0.0) -> Row:
  """The Row of a compiled step (``xla_step``'s reading of kernels and traffic)."""
  kernels, _, traffic, cycles = xla_step.tally(compiled.as_text(), tpu, smallest=1)
  memory = compiled.memory_analysis()
  return Row(
    kernels, traffic, memory.temp_size_in_bytes, memory.argument_size_in_bytes, cycles,
    params_bytes, seconds,
  )  # fmt: skip


def analyse(model: str, tx, batch: str, target_device, dtype: str, layers=None) -> Row:
  """Compiles the train step and reads its Row."""
  cfg = MODELS[model] | ({} if layers is None else {"layers": layers})
  shapes = jax.tree.leaves(
    param_shapes(cfg, BATCHES[batch][1]), is_leaf=lambda s: isinstance(s, tuple)
  )
  params_bytes = sum(math.prod(s) for s in shapes) * jnp.dtype(dtype).itemsize
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

SLICES = {"v5e-8": "v5e:2x4", "v6e-8": "v6e:2x4", "v5p-8": "v5p:2x2x2", "h100-8": "h100"}
SLICES["h200-8"] = "h200"
LAYOUTS = ("fsdp", "fsdp-last", "tp")
COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
COLUMN_PARALLEL = {"qkv", "fc", "q", "kv", "gate_up"}  # split on the last axis under tp
ROW_PARALLEL = {"out", "proj", "o", "down", "wte", "embed"}  # on the first


@functools.cache
def slice_devices(name: str) -> tuple[jax.Device, ...]:
  """The 8 compile-only devices of slice ``name`` (one of SLICES)."""
  from jax.experimental import topologies

  what = SLICES[name]
  if what in xla_step.GPUS:
    cfg = xla_step.GPUS[what]
    return tuple(
      topologies.get_topology_desc(platform="cuda", target_config=cfg, topology="1x1x8").devices
    )
  for key, value in xla_step.TPU_ENV.items():
    os.environ.setdefault(key, value)
  return tuple(topologies.get_topology_desc(topology_name=what, platform="tpu").devices)


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
  cfg = MODELS[model] | ({} if layers is None else {"layers": layers})
  return cfg | {"vocab": -(-cfg["vocab"] // 128) * 128}


def compile_sharded(cfg, tx, batch, mesh, layout, dtype, explicit) -> jax.stages.Compiled:
  """The donated train step, its params and state sharded by ``layout`` over ``mesh``."""
  is_shape = lambda s: isinstance(s, tuple)
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
    train_step(cfg, tx, explicit),
    donate_argnums=(0, 1),
    out_shardings=(param_shardings, state_shardings, named(P())),
  )
  with jax.set_mesh(mesh) if explicit else contextlib.nullcontext():
    return step.lower(params, state, tokens).compile()


def collectives(hlo: str) -> dict[str, tuple[int, int]]:
  """Count and bytes (the larger of operand and result) of each kind of collective."""
  out = {kind: (0, 0) for kind in COLLECTIVES}
  for ins, arrays in xla_step.entry_kernels(hlo):
    kind = ins["opcode"].removesuffix("-start")
    if kind in out:
      count, size = out[kind]
      out[kind] = (count + 1, size + max((b for _, b, _ in arrays), default=0))
  return out


def analyse_sharded(model, tx, batch, slice_name, layout, dtype, explicit, layers=None):
  """Compiles the sharded train step and reads its Row (per chip) and collectives."""
  cfg = sharded_cfg(model, layers)
  mesh = layout_mesh(slice_devices(slice_name), layout, explicit)
  is_shape = lambda s: isinstance(s, tuple)
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
  return read(compiled, tpu, per_chip, seconds), collectives(compiled.as_text())


# ---------------------------------------------------------------- timing on this machine


def timed(model: str, labels, batch: str, dtype: str, layers=None, repeats=20) -> dict[str, float]:
  """Median milliseconds of each optimizer's whole step on this machine's first device, the
  steps interleaved (``_timing.interleaved``), params and state donated."""
  from _timing import carried, interleaved

  cfg = MODELS[model] | ({} if layers is None else {"layers": layers})
  b, t = BATCHES[batch]
  is_shape = lambda s: isinstance(s, tuple)
  shapes, treedef = jax.tree.flatten(param_shapes(cfg, t), is_leaf=is_shape)
  keys = jax.random.split(jax.random.key(0), len(shapes) + 1)
  leaves = [0.02 * jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes)]
  tokens = jax.random.randint(keys[-1], (b, t + 1), 0, cfg["vocab"])
  opts, candidates = optimizers(), {}
  for label in labels:
    tx = opts[label]
    step = jax.jit(train_step(cfg, tx), donate_argnums=(0, 1))
    params = jax.tree.unflatten(treedef, [jnp.copy(x) for x in leaves])
    two = lambda p, s, tokens, step=step: step(p, s, tokens)[:2]
    candidates[label] = carried(two, params, tx.init(params), tokens)
  times = interleaved(candidates, repeats)
  return {label: 1e3 * sorted(ts)[len(ts) // 2] for label, ts in times.items()}


# ---------------------------------------------------------------- CLI

HEADER = [
  "| optimizer | kernels | extra kernels | step traffic | extra traffic | extra temp | peak | "
  "TPU cycles |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def line(label: str, row: Row, rel: dict) -> str:
  cycles = "-" if math.isnan(rel["cycles"]) else f"x{rel['cycles']:.3f}"
  return (
    f"| {label} | {row.kernels} | {rel['kernels']:+d} | {row.traffic / row.params:.2f} pb | "
    f"{rel['traffic_pb']:+.2f} pb ({100 * rel['traffic_share']:+.1f} %) | "
    f"{rel['temp_pb']:+.2f} pb | x{rel['peak']:.3f} | {cycles} |"
  )


def main(argv=None) -> list[dict]:
  """The command line (see the module doc); returns the rows."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--target", action="append", choices=xla_step.TARGETS[:-1])
  parser.add_argument("--model", action="append", choices=list(MODELS))
  parser.add_argument("--batch", action="append", choices=list(BATCHES))
  parser.add_argument("--dtype", action="append", choices=xla_step.DTYPES)
  parser.add_argument("--opt", action="append", help="an optimizer's label (default: all)")
  parser.add_argument("--layers", type=int, help="override the models' depth")
  parser.add_argument("--out", help="write <out>.md and <out>.json")
  parser.add_argument("--slice", action="append", choices=list(SLICES), help="sharded over 8")
  parser.add_argument("--layout", action="append", choices=LAYOUTS, help="with --slice")
  parser.add_argument("--sharding", action="append", choices=["auto", "explicit"])
  parser.add_argument("--grouping", choices=sorted(GROUPINGS), help="force a formulation")
  parser.add_argument("--time", action="store_true", help="time the steps on this machine")
  parser.add_argument("--repeats", type=int, default=20, help="timed steps per optimizer")
  args = parser.parse_args(argv)
  with forced(args.grouping):
    if args.time:
      return time_main(args)
    if args.slice:
      return sharded_main(args, argv)
    return device_main(args, argv, parser)


def device_main(args, argv, parser) -> list[dict]:
  """The whole step on one compile-only device of each ``--target``, against AdamW's."""
  jax.config.update("jax_platforms", "cpu")  # this process runs on the host, whatever it has
  devices = {t: xla_step.device(t) for t in args.target or xla_step.TARGETS[:-1]}
  opts = optimizers()
  labels = ["adamw", *[o for o in args.opt or opts if o != "adamw"]]
  if unknown := set(labels) - set(opts):
    parser.error(f"unknown --opt {sorted(unknown)}: one of {list(opts)}")
  command, versions, md = _preamble(argv, "Compiler analysis, not timings.")
  rows = []
  for target, dev in devices.items():
    for model in args.model or list(MODELS):
      for batch in args.batch or list(BATCHES):
        for dtype in args.dtype or xla_step.DTYPES:
          _section(md, [target, model, batch, dtype], args.layers, HEADER)
          adamw = None
          for label in labels:
            row = analyse(model, opts[label], batch, dev, dtype, args.layers)
            adamw = adamw or row
            rel = relative(row, adamw)
            md.append(line(label, row, rel))
            print(md[-1] + f"  ({row.seconds:.0f} s)", flush=True)
            key = dict(target=target, model=model, batch=batch, dtype=dtype, optimizer=label)
            rows.append(key | row._asdict() | rel)
  _write(args.out, md, dict(date=str(datetime.date.today()), versions=versions, command=command,
                            layers=args.layers, rows=rows))  # fmt: skip
  return rows


SHARDED_HEADER = [
  "| optimizer | kernels | extra kernels | extra traffic | extra temp | TPU cycles | collectives "
  "| beyond AdamW's |",
  "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
]


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


def sharded_main(args, argv) -> list[dict]:
  """``--slice``: the whole step sharded over 8 compile-only chips, against AdamW's."""
  jax.config.update("jax_platforms", "cpu")
  opts = optimizers()
  labels = ["adamw", *[o for o in args.opt or opts if o != "adamw"]]
  command, versions, md = _preamble(argv, "Compiler analysis, not timings; per chip.")
  rows = []
  for name in args.slice:
    for layout in args.layout or LAYOUTS:
      for sharding in args.sharding or ["auto"]:
        for model in args.model or list(MODELS):
          for batch in args.batch or ["8x512"]:
            for dtype in args.dtype or ["float32"]:
              where = [name, layout, sharding, model, batch, dtype]
              _section(md, where, args.layers, SHARDED_HEADER)
              base = None
              for label in labels:
                row, counts = analyse_sharded(
                  model, opts[label], batch, name, layout, dtype, sharding == "explicit",
                  args.layers,
                )  # fmt: skip
                base = base or (row, counts)
                rel = relative(row, base[0])
                cycles = "-" if math.isnan(rel["cycles"]) else f"x{rel['cycles']:.3f}"
                md.append(
                  f"| {label} | {row.kernels} | {rel['kernels']:+d} | {rel['traffic_pb']:+.2f} pb "
                  f"({100 * rel['traffic_share']:+.1f} %) "
                  f"| {rel['temp_pb']:+.2f} pb | {cycles} | {_collectives_text(counts)} | "
                  f"{_collectives_text(counts, base[1])} |"
                )
                print(md[-1] + f"  ({row.seconds:.0f} s)", flush=True)
                key = dict(slice=name, layout=layout, sharding=sharding, model=model,
                           batch=batch, dtype=dtype, optimizer=label)  # fmt: skip
                rows.append(key | row._asdict() | rel | {"collectives": counts})
  _write(args.out, md, dict(date=str(datetime.date.today()), versions=versions, command=command,
                            layers=args.layers, rows=rows))  # fmt: skip
  return rows


def time_main(args) -> list[dict]:
  """``--time``: the steps' median times on this machine, against AdamW's, as a table."""
  labels = ["adamw", *[o for o in args.opt or optimizers() if o != "adamw"]]
  device = jax.devices()[0]
  header = f"{datetime.date.today()}; {device.device_kind}; jax {jax.__version__}"
  md, rows = [header, "", f"Median of {args.repeats} interleaved steps."], []
  for model in args.model or list(MODELS):
    for batch in args.batch or list(BATCHES):
      for dtype in args.dtype or xla_step.DTYPES:
        ms = timed(model, labels, batch, dtype, args.layers, args.repeats)
        md += [
          "",
          f"### {model}, {batch}, {dtype}",
          "",
          "| optimizer | ms | x adamw |",
          "| --- | ---: | ---: |",
        ]
        for label, value in ms.items():
          md.append(f"| {label} | {value:.2f} | {value / ms['adamw']:.3f} |")
          rows.append(dict(model=model, batch=batch, dtype=dtype, optimizer=label, ms=value))
        print("\n".join(md[-len(ms) - 4 :]), flush=True)
  _write(args.out, md, dict(header=header, repeats=args.repeats, layers=args.layers, rows=rows))
  return rows


def _preamble(argv, note: str) -> tuple[str, dict, list[str]]:
  """The command line as run, the versions, and the start of the markdown (printed)."""
  given = sys.argv[1:] if argv is None else argv
  command = shlex.join(["python", "benchmarks/xla_train_step.py", *given])
  versions = xla_step.versions()
  header = f"{datetime.date.today()}; " + ", ".join(f"{k} {v}" for k, v in versions.items())
  print(header, "\n" + command, flush=True)
  return command, versions, [header, "", f"`{command}`", "", note]


def _section(md: list[str], where: list[str], layers, header: list[str]) -> None:
  """Starts one setting's table, printed and in the markdown."""
  title = ", ".join(where) + (f", {layers} layers" if layers else "")
  print(f"\n{title}", *header, sep="\n", flush=True)
  md += ["", f"### {title}", "", *header]


def _write(out, md: list[str], payload: dict) -> None:
  """``<out>.md`` and ``<out>.json``, where ``--out`` is given."""
  if out:
    with open(out + ".json", "w") as f:
      json.dump(payload, f, indent=1)
    with open(out + ".md", "w") as f:
      f.write("\n".join(md) + "\n")


if __name__ == "__main__":
  main()
