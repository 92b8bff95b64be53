"""How a leaf's last axis is split into circuits of ``n`` qubits, per platform.

Qubit ``j`` of a group takes the ``j``-th of ``n`` consecutive entries along the
last axis; a last group shorter than ``n`` is completed with angle 0. The
formulations below compute the same values (``tests/test_one_loop.py``), from
which XLA builds different programs:

* ``"columns"``: the axis viewed as ``(groups, n)``, one circuit per row (after
  padding to whole groups).
* ``"shifted-stored"``: no reshape. Entry ``i`` sits at position ``k = i % n``
  of its group, whose qubit ``j`` is entry ``i - k + j``; each position's
  output is evaluated on the whole axis from shifted copies of the parameters
  as stored (each copy prepared where it is read, so what a compiler
  materialises to read neighbours is no wider than the parameters) and
  selected where it applies (``n`` times the arithmetic, no temporary).
  Beyond the last entry the shifted copies read angle 0, the padding's value.
* ``"shifted-in-groups"``: the same shifts of the parameters as stored and the
  same selection, made inside the ``(groups, n)`` view (after padding to whole
  groups), where a shift past a group's end reads the padding instead of the
  next group. A sharded last axis whose shards hold whole groups splits that
  view along ``groups`` only, so XLA's partitioner sees every read inside a
  shard; whole-axis shifts it cannot prove are, and it exchanges halos
  (collective-permutes) with the neighbouring devices.

The step compiles :data:`PLATFORM_GROUPING`'s formulation for the platform it
is lowered for (``jax.lax.platform_dependent``). :func:`forced` makes steps
traced inside it take one formulation on every platform, for tests and
benchmarks; nothing else changes which one a step takes.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Optional

import jax
import jax.numpy as jnp

from qsgd_optax._src.explicit_sharding import per_shard
from qsgd_optax.backends import Backend

Prepare = Callable[[jax.Array], jax.Array]
Grouping = Callable[[Backend, int, jax.Array, Prepare], jax.Array]
WholeGroups = Callable[[Backend, int, jax.Array], jax.Array]


def _identity(x: jax.Array) -> jax.Array:
  return x


def _padded(whole_groups: WholeGroups) -> Grouping:
  """A formulation that needs whole groups, applied to any length: the angles
  are prepared, the last axis padded with angle 0 to a multiple of ``n``, the
  padded outputs dropped."""

  def apply(backend: Backend, n: int, theta: jax.Array, prepare: Prepare) -> jax.Array:
    t = prepare(theta)
    length = t.shape[-1]
    pad = -length % n
    if not pad:
      return whole_groups(backend, n, t)
    t = jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, pad)])
    return whole_groups(backend, n, t)[..., :length]

  return apply


def _by_groups(backend: Backend, n: int, t: jax.Array) -> jax.Array:
  groups = t.shape[-1] // n
  z = backend.expectations(t.reshape((*t.shape[:-1], groups, n)))
  return z.reshape(t.shape)


def _by_position(
  backend: Backend, n: int, shifted: Callable[[int], jax.Array], position: jax.Array
) -> jax.Array:
  """Position ``k``'s output evaluated from the copies shifted by ``j - k``, and
  selected where ``position == k``."""
  assert backend.columns is not None
  out: Optional[jax.Array] = None
  for k in range(n):
    (z_k,) = backend.columns([shifted(j - k) for j in range(n)], (k,))
    out = z_k if out is None else jnp.where(position == k, z_k, out)
  assert out is not None
  return out


def _by_shifts(backend: Backend, n: int, theta: jax.Array, prepare: Prepare) -> jax.Array:
  length = theta.shape[-1]
  wide = jnp.pad(theta, [(0, 0)] * (theta.ndim - 1) + [(n - 1, n - 1)])
  shifted = lambda d: prepare(jax.lax.slice_in_dim(wide, n - 1 + d, n - 1 + d + length, axis=-1))
  position = jax.lax.broadcasted_iota(jnp.int32, theta.shape, theta.ndim - 1) % n
  return _by_position(backend, n, shifted, position)


def _by_shifts_in_groups(backend: Backend, n: int, theta: jax.Array, prepare: Prepare) -> jax.Array:
  length = theta.shape[-1]
  pad = -length % n
  whole = jnp.pad(theta, [(0, 0)] * (theta.ndim - 1) + [(0, pad)]) if pad else theta
  view = whole.reshape((*theta.shape[:-1], (length + pad) // n, n))
  wide = jnp.pad(view, [(0, 0)] * (view.ndim - 1) + [(n - 1, n - 1)])
  shifted = lambda d: prepare(jax.lax.slice_in_dim(wide, n - 1 + d, 2 * n - 1 + d, axis=-1))
  out = _by_position(backend, n, shifted, jnp.arange(n)).reshape(whole.shape)
  return out[..., :length] if pad else out


# Only closed-form backends have columns; the others always take "columns".
GROUPINGS: dict[str, Grouping] = {
  "columns": _padded(_by_groups),
  "shifted-stored": _by_shifts,  # Pads itself, inside the loop.
  "shifted-in-groups": _by_shifts_in_groups,
}
# The formulation each platform compiles, chosen by measurement of the whole
# train step (benchmarks/xla_train_step.py, tests/test_accelerators.py): XLA:CPU
# runs "columns" fastest (benchmarks/grouping.py); XLA:GPU fuses
# "shifted-in-groups" into AdamW's pass plus one copy of the params, as it did
# the whole-axis shifts, and it needs no halo on a sharded last axis; XLA:TPU
# runs "shifted-stored" best on one chip, where the (groups, n) views of the
# others cost relayouts, but it exchanges halos where the last axis is sharded
# under automatic sharding (explicit sharding runs it per shard, with none).
PLATFORM_GROUPING = {"cpu": "columns", "tpu": "shifted-stored", "default": "shifted-in-groups"}

_FORCED: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
  "qsgd_optax_grouping", default=None
)


@contextlib.contextmanager
def forced(name: Optional[str]) -> Iterator[None]:
  """Steps traced inside take formulation ``name`` on every platform.

  For tests and benchmarks that compare the formulations. It acts when a step
  is traced: a function ``jax.jit`` has already traced keeps its program.

  Args:
    name: one of :data:`GROUPINGS`, or ``None`` for each platform's own
      (:data:`PLATFORM_GROUPING`).

  Returns:
    A context manager.

  Raises:
    ValueError: if ``name`` is not a formulation.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import select
    >>> from qsgd_optax.grouping import forced
    >>> from qsgd_optax._src.grouping import grouped
    >>> backend = select(Gates.build(2, "chain"), "analytic")
    >>> with forced("shifted-stored"):
    ...   grouped(backend, 2, jnp.array([0.5, 0.5, 0.5]))
    Array([-1.,  1., -1.], dtype=float32)
  """
  if name is not None and name not in GROUPINGS:
    raise ValueError(f"name must be one of {sorted(GROUPINGS)} or None, got {name!r}.")
  token = _FORCED.set(name)
  try:
    yield
  finally:
    _FORCED.reset(token)


def forced_name() -> Optional[str]:
  """The formulation :func:`forced` imposes here, ``None`` outside it."""
  return _FORCED.get()


def grouped(backend: Backend, n: int, t: jax.Array, prepare: Prepare = _identity) -> jax.Array:
  """Evaluates ``backend`` on consecutive groups of ``n`` along the last axis.

  A last group shorter than ``n`` is completed with angle 0. Only the last
  axis is touched, so sharded leading axes keep their sharding; under
  explicit sharding the groups are evaluated per shard (see
  ``qsgd_optax._src.explicit_sharding``).

  Args:
    backend: the circuit's evaluation (:func:`qsgd_optax.backends.select`).
    n: qubits per circuit (the group size).
    t: angles in turns, any shape (a scalar is one group).
    prepare: an elementwise map applied to the angles before evaluation
      (the reduction of turns, in the computation's dtype).

  Returns:
    ``<Z>`` of every entry, shaped like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import select
    >>> from qsgd_optax._src.grouping import grouped
    >>> backend = select(Gates.build(2, "chain"), "analytic")
    >>> grouped(backend, 2, jnp.array([0.5, 0.5, 0.5]))
    Array([-1.,  1., -1.], dtype=float32)
  """
  t1 = t.reshape(1) if t.ndim == 0 else t
  how = lambda name: lambda x: GROUPINGS[name](backend, n, x, prepare)
  name = forced_name()
  if backend.columns is None:
    evaluate = how("columns")
  elif name is not None:
    evaluate = how(name)
  else:
    evaluate = lambda x: jax.lax.platform_dependent(
      x, **{p: how(g) for p, g in PLATFORM_GROUPING.items()}
    )
  return per_shard(evaluate, t1, n).reshape(t.shape)


__all__ = ["GROUPINGS", "PLATFORM_GROUPING", "forced", "grouped"]
