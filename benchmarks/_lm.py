"""The causal LMs whose whole train step the benchmarks compile and time, in plain jax.

Models (no framework; ``config``'s ``layers`` overrides the depth):
  gpt2   GPT-2 small: 12 layers, d 768, 12 heads, MLP 3072, vocab 50257, learned positions,
         LayerNorm, GELU, tied embedding (124M parameters)
  llama  a Llama with SmolLM2-135M's shapes: 30 layers, d 576, 9 heads of 64, 3 KV heads
         (grouped), SwiGLU 1536, RMSNorm, rotary positions, vocab 49152, tied embedding (135M
         parameters; a size whose AdamW step fits one chip of every target in float32)
  gpt2-mini  GPT-2's architecture at 2 layers, d 256, 4 heads, MLP 1024, vocab 1024 (1.9M
         parameters): the sharded step CI compiles (``tests/test_accelerators.py``), at 8x128
Batches: 1x512 (fine-tuning), 8x1024 (pretraining), 8x512 (the sharded steps) and 8x128
(gpt2-mini's). ``MEASURED`` and ``MEASURED_BATCHES`` are what the scripts run by default. The model
computes in the params' dtype, the loss in float32. :func:`train_step` is the step users jit:
next-token cross-entropy, ``jax.value_and_grad``, ``tx.update`` and ``optax.apply_updates``.
``xla_train_step.py`` compiles it for devices this machine lacks; ``train_step.py`` times it
on this machine's.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

MODELS = {
  "gpt2": dict(kind="gpt2", layers=12, d=768, heads=12, kv_heads=12, mlp=3072, vocab=50257),
  "llama": dict(kind="llama", layers=30, d=576, heads=9, kv_heads=3, mlp=1536, vocab=49152),
  "gpt2-mini": dict(kind="gpt2", layers=2, d=256, heads=4, kv_heads=4, mlp=1024, vocab=1024),
}
BATCHES = {"1x512": (1, 512), "8x1024": (8, 1024), "8x512": (8, 512), "8x128": (8, 128)}
MEASURED = ("gpt2", "llama")
MEASURED_BATCHES = ("1x512", "8x1024", "8x512")


def config(model: str, layers=None) -> dict:
  """The configuration of ``model`` (one of MODELS), at ``layers`` layers if given."""
  return MODELS[model] | ({} if layers is None else {"layers": layers})


def is_shape(s) -> bool:
  """Whether ``s`` is a leaf of :func:`param_shapes`'s tree."""
  return isinstance(s, tuple)


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


def params_bytes(cfg: dict, context: int, dtype) -> int:
  """The bytes of the model's params in ``dtype``."""
  shapes = jax.tree.leaves(param_shapes(cfg, context), is_leaf=is_shape)
  return sum(math.prod(s) for s in shapes) * jnp.dtype(dtype).itemsize


def init(cfg: dict, context: int, dtype, key: jax.Array) -> dict[str, Any]:
  """Random params (normal, standard deviation 0.02) of the model, in ``dtype``."""
  shapes, treedef = jax.tree.flatten(param_shapes(cfg, context), is_leaf=is_shape)
  keys = jax.random.split(key, len(shapes))
  return jax.tree.unflatten(
    treedef, [0.02 * jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes)]
  )


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
  """The step users jit: loss and grads, the update, the apply; ``step(params, state, tokens)``
  returns the new params and state and the loss. ``explicit``: the loss runs as under automatic
  sharding (the model is written for it), the rest under explicit."""

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
