"""The per-leaf rule every placement shares: ``g -> g * (1 + lambda * m)``.

``m = -<Z>`` of the circuit at angles ``pi * theta`` of the matching
parameters. :func:`modulate_leaf` computes it for one leaf: reduce the angles,
evaluate the backend over groups of ``n_qubits`` (or elementwise), optionally
sample shots, then scale the incoming leaf. Which leaf it scales decides the
placement: the raw gradient (``superpose`` before Adam), Adam's normalised
direction (``placement="direction"``), or only the added term (the paper's
literal rule, ``term_only``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qsgd_optax.backends import Expectations, analytic


@dataclasses.dataclass(frozen=True)
class LeafRule:
  """What :func:`modulate_leaf` does, fixed when the transformation is built.

  Attributes:
    expval: the backend, turns ``(..., n_qubits)`` -> ``<Z>``.
    elementwise: whether ``expval`` takes any shape (no grouping needed).
    n_qubits: parameters per circuit.
    coverage: ``"all"`` or ``"leading"``.
    shots: ``None`` (exact) or the number of measurement shots.
    term_only: return ``lambda * m * g`` instead of ``g * (1 + lambda * m)``.
  """

  expval: Expectations
  elementwise: bool
  n_qubits: int
  coverage: str = "all"
  shots: Optional[Any] = None
  term_only: bool = False


def is_modulated(g: Any, p: Any) -> bool:
  """Whether a (gradient, parameter) leaf pair gets a modulation."""
  return (
    g is not None
    and p is not None
    and jnp.issubdtype(g.dtype, jnp.floating)
    and jnp.issubdtype(p.dtype, jnp.floating)
    and g.size > 0
  )


def grouped(fn: Expectations, n: int, t: jax.Array) -> jax.Array:
  """Applies ``fn`` to consecutive groups of ``n`` along the last axis.

  The last axis is padded (with angle 0) to a multiple of ``n``; the padded
  outputs are dropped. Only the last axis is reshaped, so sharded leading
  axes keep their sharding.
  """
  shape = t.shape
  t = t.reshape(1) if t.ndim == 0 else t
  length = t.shape[-1]
  groups = -(-length // n)
  pad = groups * n - length
  if pad:
    t = jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, pad)])
  z = fn(t.reshape((*t.shape[:-1], groups, n)))
  z = z.reshape((*t.shape[:-1], groups * n))
  return (z[..., :length] if pad else z).reshape(shape)


def _leading_index(shape: tuple[int, ...], n: int) -> Any:
  """Index of a leaf's first ``n`` entries (row-major)."""
  flat = np.arange(min(n, int(np.prod(shape, dtype=int))))
  return np.unravel_index(flat, shape) if shape else ()


def expectations(rule: LeafRule, theta: jax.Array, key: Optional[jax.Array]) -> jax.Array:
  """``<Z>`` for every entry of ``theta`` (float32 or wider), sampled with
  ``key`` when ``rule.shots`` is set. Under ``coverage="leading"`` only the
  first ``n_qubits`` entries, flattened."""
  t = analytic.reduce_turns(theta)
  if rule.coverage == "leading":
    head = t[_leading_index(t.shape, rule.n_qubits)].reshape(-1)
    z = grouped(rule.expval, rule.n_qubits, head)
  elif rule.elementwise:
    z = rule.expval(t)
  else:
    z = grouped(rule.expval, rule.n_qubits, t)
  if rule.shots is None:
    return z
  if key is None:
    raise ValueError("shots are sampled with a PRNG key: pass key.")
  p_zero = jnp.clip((1 + z) / 2, 0, 1)
  k = jax.random.binomial(key, rule.shots, p_zero, dtype=t.dtype)
  return 2 * k / rule.shots - 1


def modulate_leaf(
  rule: LeafRule,
  g: Any,
  p: Any,
  weight: Any,
  key: Optional[jax.Array] = None,
) -> Any:
  """``g * (1 + weight * m(p))`` (or ``weight * m(p) * g`` if
  ``rule.term_only``), in ``g``'s dtype; other leaves unchanged.

  Computed in at least float32. A finite result stays finite (clipped to the
  dtype's largest value); an infinite ``g`` stays infinite, so
  ``optax.apply_if_finite`` still sees it.
  """
  if not is_modulated(g, p):
    return g
  cdtype = jnp.promote_types(jnp.promote_types(g.dtype, p.dtype), jnp.float32)
  z = expectations(rule, p.astype(cdtype), key)
  lam = jnp.asarray(weight, cdtype)
  gc = g.astype(cdtype)
  if rule.coverage == "leading":
    index = _leading_index(gc.shape, rule.n_qubits)
    head = gc[index].reshape(-1)
    new = head * (lam * -z) if rule.term_only else head * (1 - lam * z)
    base = jnp.zeros_like(gc) if rule.term_only else gc
    out = base.at[index].set(new.reshape(gc[index].shape))
  else:
    out = gc * (lam * -z) if rule.term_only else gc * (1 - lam * z)
  big = jnp.finfo(g.dtype).max
  out = jnp.where(jnp.isinf(gc), out, jnp.clip(out, -big, big))
  return out.astype(g.dtype)


__all__ = ["LeafRule", "expectations", "grouped", "is_modulated", "modulate_leaf"]
