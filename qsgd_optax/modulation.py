"""The per-leaf modulation ``m(theta)`` and the two ways a placement applies it.

``m = -<Z>`` of the circuit at angles ``pi * theta`` of the matching
parameters. :func:`modulation` computes it for one leaf: reduce the angles,
evaluate the backend over groups of ``n_qubits`` (or elementwise), optionally
sample shots. :func:`modulate_leaf` then combines it with the incoming leaf
``g`` in one of two ways (:data:`COMBINES`): ``"factor"``,
``g * (1 + lambda * m)`` (``superpose``; applied to the raw gradient or to
Adam's direction), or ``"term"``, ``lambda * m * g`` (the term the paper's
literal rule adds to Adam's direction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qsgd_optax.backends import Backend, analytic


@dataclasses.dataclass(frozen=True)
class LeafRule:
  """How :func:`modulation` evaluates a leaf, fixed when the transformation is built.

  Attributes:
    backend: the circuit's evaluation (:func:`qsgd_optax.backends.select`).
    n_qubits: parameters per circuit.
    coverage: ``"all"`` or ``"leading"``.
    shots: ``None`` (exact) or the number of measurement shots.

  Examples:
    >>> from qsgd_optax.superpose import CircuitOptions
    >>> rule = CircuitOptions(n_qubits=2, entanglement="chain").rule()
    >>> rule.n_qubits, rule.coverage, rule.backend.elementwise
    (2, 'all', False)
  """

  backend: Backend
  n_qubits: int
  coverage: str = "all"
  shots: Optional[Any] = None


def is_modulated(g: Any, p: Any) -> bool:
  """Whether a (gradient, parameter) leaf pair gets a modulation.

  Both leaves must be present (not ``None``) and floating point, and ``g``
  non-empty.

  Args:
    g: a gradient (or update) leaf, or ``None``.
    p: the matching parameter leaf, or ``None``.

  Returns:
    ``True`` if the pair is modulated.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.modulation import is_modulated
    >>> is_modulated(jnp.ones(3), jnp.ones(3))
    True
    >>> is_modulated(jnp.ones(3), jnp.arange(3))
    False
  """
  return (
    g is not None
    and p is not None
    and jnp.issubdtype(g.dtype, jnp.floating)
    and jnp.issubdtype(p.dtype, jnp.floating)
    and g.size > 0
  )


Grouping = Callable[[Backend, int, jax.Array], jax.Array]


def _padded(whole_groups: Grouping) -> Grouping:
  """A formulation that needs whole groups, applied to any length: the last
  axis is padded with angle 0 to a multiple of ``n``, the padded outputs dropped."""

  def apply(backend: Backend, n: int, t: jax.Array) -> jax.Array:
    length = t.shape[-1]
    pad = -length % n
    if not pad:
      return whole_groups(backend, n, t)
    t = jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, pad)])
    return whole_groups(backend, n, t)[..., :length]

  return apply


def _by_groups(backend: Backend, n: int, t: jax.Array) -> jax.Array:
  """``"columns"``: the last axis viewed as ``(groups, n)``, one circuit per row."""
  groups = t.shape[-1] // n
  z = backend.expectations(t.reshape((*t.shape[:-1], groups, n)))
  return z.reshape(t.shape)


def _by_strides(backend: Backend, n: int, t: jax.Array) -> jax.Array:
  """``"strided"``: qubit ``j``'s angles are every ``n``-th entry from ``j``;
  the outputs are interleaved back."""
  assert backend.columns is not None
  stride = lambda j: jax.lax.slice_in_dim(t, j, None, stride=n, axis=-1)  # Never a gather.
  out = backend.columns([stride(j) for j in range(n)])
  return jnp.stack(out, axis=-1).reshape(t.shape)


def _by_shifts(backend: Backend, n: int, t: jax.Array) -> jax.Array:
  """``"shifted"``: no reshape at all. Entry ``i`` sits at position
  ``k = i % n`` of its group, whose qubit ``j`` is entry ``i - k + j``; each
  position's output is evaluated on the whole axis from shifted copies of it
  and selected where it applies (``n`` times the arithmetic, no temporary).
  Needs no padding: beyond the last entry the shifted copies read angle 0,
  which is the padding's value."""
  assert backend.columns is not None
  length = t.shape[-1]
  edge = [(0, 0)] * (t.ndim - 1) + [(n - 1, n - 1)]
  wide = jnp.pad(t, edge)
  shifted = lambda d: jax.lax.slice_in_dim(wide, n - 1 + d, n - 1 + d + length, axis=-1)
  position = jax.lax.broadcasted_iota(jnp.int32, t.shape, t.ndim - 1) % n
  out = jnp.zeros_like(t)
  for k in range(n):
    z_k = backend.columns([shifted(j - k) for j in range(n)])[k]
    out = jnp.where(position == k, z_k, out)
  return out


# How a leaf's last axis is split into circuits: candidate formulations of the
# same values, for XLA to fuse into the optimizer's loop (benchmarks/grouping.py
# compares them per platform). Only closed-form backends have columns.
GROUPINGS: dict[str, Grouping] = {
  "columns": _padded(_by_groups),
  "strided": _padded(_by_strides),
  "shifted": _by_shifts,  # Pads itself, inside the loop.
}
grouping = "columns"  # Measured choice for every platform until a device run says otherwise.


def grouped(backend: Backend, n: int, t: jax.Array) -> jax.Array:
  """Evaluates ``backend`` on consecutive groups of ``n`` along the last axis.

  The last axis is padded (with angle 0) to a multiple of ``n``; the padded
  outputs are dropped. Only the last axis is touched, so sharded leading
  axes keep their sharding.

  Args:
    backend: the circuit's evaluation (:func:`qsgd_optax.backends.select`).
    n: qubits per circuit (the group size).
    t: angles in turns, reduced; any shape (a scalar is one group).

  Returns:
    ``<Z>`` of every entry, shaped like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import PerturbationCircuit
    >>> from qsgd_optax.backends import select
    >>> from qsgd_optax.modulation import grouped
    >>> backend = select(PerturbationCircuit.build(2, "chain"), "analytic")
    >>> grouped(backend, 2, jnp.array([0.5, 0.5, 0.5]))
    Array([-1.,  1., -1.], dtype=float32)
  """
  how = grouping if backend.columns is not None else "columns"
  z = GROUPINGS[how](backend, n, t.reshape(1) if t.ndim == 0 else t)
  return z.reshape(t.shape)


def _leading_index(shape: tuple[int, ...], n: int) -> Any:
  """Index of a leaf's first ``n`` entries (row-major)."""
  flat = np.arange(min(n, int(np.prod(shape, dtype=int))))
  return np.unravel_index(flat, shape) if shape else ()


def expectations(rule: LeafRule, theta: jax.Array, key: Optional[jax.Array]) -> jax.Array:
  """``<Z>`` of the circuit at angles ``pi * theta``, for every entry of ``theta``.

  Sampled with ``key`` when ``rule.shots`` is set. Under ``coverage="leading"``
  only the first ``n_qubits`` entries, flattened.

  Args:
    rule: how the leaf is evaluated (a :class:`LeafRule`).
    theta: the parameter values (float32 or wider), in turns; reduced here
      by :func:`~qsgd_optax.backends.analytic.reduce_turns`.
    key: PRNG key of the shots; needed only when ``rule.shots`` is set.

  Returns:
    An array like ``theta`` (1-D under ``coverage="leading"``).

  Raises:
    ValueError: if ``rule.shots`` is set and ``key`` is ``None``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.modulation import expectations
    >>> from qsgd_optax.superpose import CircuitOptions
    >>> rule = CircuitOptions(n_qubits=4).rule()
    >>> expectations(rule, jnp.array([0.5, 0.25, 0.0]), None).round(4)
    Array([-1.    , -0.7071, -0.    ], dtype=float32)
  """
  t = analytic.reduce_turns(theta)
  if rule.coverage == "leading":
    head = t[_leading_index(t.shape, rule.n_qubits)].reshape(-1)
    z = grouped(rule.backend, rule.n_qubits, head)
  elif rule.backend.elementwise:
    z = rule.backend.expectations(t)
  else:
    z = grouped(rule.backend, rule.n_qubits, t)
  if rule.shots is None:
    return z
  if key is None:
    raise ValueError("shots are sampled with a PRNG key: pass key.")
  p_zero = jnp.clip((1 + z) / 2, 0, 1)
  k = jax.random.binomial(key, rule.shots, p_zero, dtype=t.dtype)
  return 2 * k / rule.shots - 1


def modulation(rule: LeafRule, theta: jax.Array, key: Optional[jax.Array]) -> jax.Array:
  """The modulation ``m = -<Z>`` for every entry of ``theta``.

  ``0`` outside the first ``n_qubits`` entries under ``coverage="leading"``.

  Args:
    rule: how the leaf is evaluated (a :class:`LeafRule`).
    theta: the parameter values (float32 or wider), in turns.
    key: PRNG key of the shots; needed only when ``rule.shots`` is set.

  Returns:
    An array like ``theta``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.modulation import modulation
    >>> from qsgd_optax.superpose import CircuitOptions
    >>> rule = CircuitOptions(n_qubits=2, coverage="leading").rule()
    >>> modulation(rule, jnp.full((2, 3), 0.5), None).tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
  """
  m = -expectations(rule, theta, key)
  if rule.coverage != "leading":
    return m
  index = _leading_index(theta.shape, rule.n_qubits)
  return jnp.zeros_like(theta).at[index].set(m.reshape(theta[index].shape))


COMBINES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
  "factor": lambda g, lam_m: g * (1 + lam_m),
  "term": lambda g, lam_m: g * lam_m,
}


def modulate_leaf(
  rule: LeafRule,
  combine: str,
  g: Any,
  p: Any,
  weight: Any,
  key: Optional[jax.Array] = None,
) -> Any:
  """Combines a leaf ``g`` with the modulation ``m(p)`` of its parameters.

  ``g * (1 + weight * m(p))`` (``combine="factor"``) or ``weight * m(p) * g``
  (``"term"``), in ``g``'s dtype; other leaves (see :func:`is_modulated`)
  unchanged (``"factor"``) or zero (``"term"``).

  Computed in at least float32. A finite result stays finite (clipped to the
  dtype's largest value); an infinite ``g`` stays infinite, so
  ``optax.apply_if_finite`` still sees it.

  Args:
    rule: how ``m`` is evaluated (a :class:`LeafRule`).
    combine: ``"factor"`` or ``"term"`` (:data:`COMBINES`).
    g: the incoming leaf (a gradient, or Adam's direction).
    p: the matching parameter leaf; ``m`` is evaluated at its values.
    weight: the modulation's weight ``lambda``.
    key: PRNG key of the shots; needed only when ``rule.shots`` is set.

  Returns:
    The combined leaf.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.modulation import modulate_leaf
    >>> from qsgd_optax.superpose import CircuitOptions
    >>> rule = CircuitOptions(n_qubits=4).rule()
    >>> p = jnp.array([0.5, 0.25, 0.0])
    >>> modulate_leaf(rule, "factor", jnp.ones(3), p, 0.5).round(4)
    Array([1.5   , 1.3536, 1.    ], dtype=float32)
    >>> modulate_leaf(rule, "term", jnp.ones(3), p, 0.5).round(4)
    Array([0.5   , 0.3536, 0.    ], dtype=float32)
  """
  if not is_modulated(g, p):
    return g if combine == "factor" or g is None else jnp.zeros_like(g)
  # As jax stores them: a float64 numpy leaf is float32 while x64 is off.
  out_dtype = jax.dtypes.canonicalize_dtype(g.dtype)
  cdtype = jax.dtypes.canonicalize_dtype(
    jnp.promote_types(jnp.promote_types(g.dtype, p.dtype), jnp.float32)
  )
  lam_m = jnp.asarray(weight, cdtype) * modulation(rule, jnp.asarray(p, cdtype), key)
  gc = jnp.asarray(g, cdtype)
  out = COMBINES[combine](gc, lam_m)
  big = jnp.finfo(out_dtype).max
  out = jnp.where(jnp.isinf(gc), out, jnp.clip(out, -big, big))
  return out.astype(out_dtype)


__all__ = [
  "COMBINES",
  "GROUPINGS",
  "LeafRule",
  "expectations",
  "grouped",
  "is_modulated",
  "modulate_leaf",
  "modulation",
]
