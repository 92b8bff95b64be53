"""How a leaf's modulation runs when its sharding is explicit (``AxisType.Explicit``).

Under JAX's explicit sharding (``jax.make_mesh(..., axis_types=(AxisType.Explicit,
...))`` with ``jax.set_mesh``) a sharded array's type carries its sharding and
every operation checks it while tracing. The grouped formulations pad, shift
and select along a leaf's last axis, and the leading coverage and the sampled
shots read across the whole leaf; on a sharded axis those checks reject them.
So, for a leaf whose type names explicit mesh axes:

* The grouped evaluation runs per shard, in :func:`jax.shard_map` over the
  leaf's own sharding. A shard whose last-axis length is a multiple of ``n``
  holds whole groups, so every device evaluates its groups with no
  communication, in the formulation its platform compiles. Where the last
  axis is sharded into lengths that are not whole groups, that axis is first
  gathered (:func:`jax.sharding.reshard`: one all-gather of the leaf over the
  last axis's mesh axes per step) and the result sliced back, so the values
  are the unsharded ones.
* The leading coverage and the shots' sampling run with the mesh axes made
  auto (:func:`jax.sharding.auto_axes`), as under ``AxisType.Auto``, and their
  result takes the leaf's sharding again.

Nothing changes for a leaf whose type has no explicit axes (``AxisType.Auto``,
the default, or no mesh), nor on a jax without explicit sharding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional

import jax
from jax.sharding import NamedSharding, PartitionSpec

Fn = Callable[[jax.Array], jax.Array]


def _axis_names(entry: Any) -> tuple[str, ...]:
  if entry is None:
    return ()
  return tuple(entry) if isinstance(entry, tuple) else (entry,)


def explicit_sharding(x: jax.Array) -> Optional[Any]:
  """``x``'s sharding where its type shards an axis over explicit mesh axes, else ``None``."""
  sharding: Any = getattr(jax.typeof(x), "sharding", None)
  explicit = set(getattr(getattr(sharding, "mesh", None), "explicit_axes", ()))
  if not explicit:
    return None
  used = {a for entry in sharding.spec for a in _axis_names(entry)}
  return sharding if used & explicit else None


def _full_spec(spec: PartitionSpec, ndim: int) -> tuple[Any, ...]:
  return tuple(spec) + (None,) * (ndim - len(spec))


def holds_whole_groups(sharding: Any, shape: tuple[int, ...], n: int) -> bool:
  """Whether every shard of an array ``shape`` sharded by ``sharding`` holds whole
  groups of ``n`` along the last axis."""
  if not shape:
    return True
  last = _full_spec(sharding.spec, len(shape))[-1]
  devices = math.prod(sharding.mesh.shape[a] for a in _axis_names(last))
  length = shape[-1]
  return length % devices == 0 and (length // devices) % n == 0


def per_shard(fn: Fn, x: jax.Array, n: int) -> jax.Array:
  """``fn(x)`` for ``fn`` that maps each group of ``n`` along the last axis on its own.

  Under explicit sharding ``fn`` runs on each shard (gathering the last axis
  first where its shards are not whole groups); otherwise ``fn(x)`` as it is.
  """
  sharding = explicit_sharding(x)
  if sharding is None:
    return fn(x)
  spec = _full_spec(sharding.spec, x.ndim)
  if not holds_whole_groups(sharding, x.shape, n):
    gathered = PartitionSpec(*spec[:-1], None)
    whole = jax.sharding.reshard(x, NamedSharding(sharding.mesh, gathered))
    z = jax.shard_map(fn, mesh=sharding.mesh, in_specs=gathered, out_specs=gathered)(whole)
    return jax.sharding.reshard(z, sharding)
  local = PartitionSpec(*spec)
  return jax.shard_map(fn, mesh=sharding.mesh, in_specs=local, out_specs=local)(x)


def as_auto(fn: Callable[..., jax.Array], x: jax.Array, *args: Any) -> jax.Array:
  """``fn(x, *args)``, run as under ``AxisType.Auto`` where ``x``'s sharding is
  explicit, its result sharded like ``x``."""
  sharding = explicit_sharding(x)
  if sharding is None:
    return fn(x, *args)
  return jax.sharding.auto_axes(fn, out_sharding=sharding)(x, *args)
