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
With ``--time`` it times the same steps on this machine's device instead (a GPU: medians of
interleaved steps, against AdamW's; ``benchmarks/gpu_check.sh`` runs it):
  python benchmarks/xla_train_step.py --time --model gpt2 --batch 1x512 --dtype float32
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
import xla_step

import qsgd_optax

MODELS = {
  "gpt2": dict(kind="gpt2", layers=12, d=768, heads=12, kv_heads=12, mlp=3072, vocab=50257),
  "llama": dict(kind="llama", layers=30, d=576, heads=9, kv_heads=3, mlp=1536, vocab=49152),
}
BATCHES = {"1x512": (1, 512), "8x1024": (8, 1024)}
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


def train_step(cfg: dict, tx: optax.GradientTransformation):
  """The step users jit: loss and grads, the update, the apply."""

  def loss(params, tokens):
    out = logits(cfg, params, tokens[:, :-1]).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(out, tokens[:, 1:]).mean()

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
  parser.add_argument("--time", action="store_true", help="time the steps on this machine")
  parser.add_argument("--repeats", type=int, default=20, help="timed steps per optimizer")
  args = parser.parse_args(argv)
  if args.time:
    return time_main(args)
  jax.config.update("jax_platforms", "cpu")  # this process runs on the host, whatever it has
  devices = {t: xla_step.device(t) for t in args.target or xla_step.TARGETS[:-1]}
  opts = optimizers()
  labels = ["adamw", *[o for o in args.opt or opts if o != "adamw"]]
  if unknown := set(labels) - set(opts):
    parser.error(f"unknown --opt {sorted(unknown)}: one of {list(opts)}")
  given = sys.argv[1:] if argv is None else argv
  command = shlex.join(["python", "benchmarks/xla_train_step.py", *given])
  versions = xla_step.versions()
  header = f"{datetime.date.today()}; " + ", ".join(f"{k} {v}" for k, v in versions.items())
  print(header, "\n" + command, flush=True)
  rows, md = [], [header, "", f"`{command}`", "", "Compiler analysis, not timings."]
  for target, dev in devices.items():
    for model in args.model or list(MODELS):
      for batch in args.batch or list(BATCHES):
        for dtype in args.dtype or xla_step.DTYPES:
          title = f"{target}, {model}, {batch}, {dtype}" + (
            f", {args.layers} layers" if args.layers else ""
          )
          print(f"\n{title}", *HEADER, sep="\n", flush=True)
          md += ["", f"### {title}", "", *HEADER]
          adamw = None
          for label in labels:
            row = analyse(model, opts[label], batch, dev, dtype, args.layers)
            adamw = adamw or row
            rel = relative(row, adamw)
            md.append(line(label, row, rel))
            print(md[-1] + f"  ({row.seconds:.0f} s)", flush=True)
            key = dict(target=target, model=model, batch=batch, dtype=dtype, optimizer=label)
            rows.append(key | row._asdict() | rel)
  if args.out:
    with open(args.out + ".json", "w") as f:
      json.dump(dict(date=str(datetime.date.today()), versions=versions, command=command,
                     layers=args.layers, rows=rows), f, indent=1)  # fmt: skip
    with open(args.out + ".md", "w") as f:
      f.write("\n".join(md) + "\n")
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
  if args.out:
    with open(args.out + ".json", "w") as f:
      json.dump(
        dict(header=header, repeats=args.repeats, layers=args.layers, rows=rows), f, indent=1
      )
    with open(args.out + ".md", "w") as f:
      f.write("\n".join(md) + "\n")
  return rows


if __name__ == "__main__":
  main()
