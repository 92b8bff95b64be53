"""Adam with both moments of a leaf in one array, so one loop writes both.

XLA:CPU runs every array a step writes in a loop of its own and does not merge
sibling loops (``benchmarks/hlo_fusions.py``): ``optax.scale_by_adam``'s new
``mu`` and new ``nu`` are two passes over memory, and whatever produced the
gradient in the same step, such as :func:`~qsgd_optax.superpose`'s circuit,
is evaluated in each of them (or written to a params-sized temporary first).
Kept as one complex array per float32 or float64 leaf, ``mu + 1j * nu``, both
moments are one array and so one loop, which evaluates the gradient once.
The arithmetic is ``optax.scale_by_adam``'s, operation for operation
(``optax.tree.update_moment``, ``update_moment_per_elem_norm`` and
``bias_correction`` on each leaf), so the updates are the same. No type holds
two 16-bit floats, so bfloat16 and float16 leaves keep ``(mu, nu)`` apart, as
optax does; other leaves (ints, bools, complex) and ``None`` get no moments
and pass through.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

_COMPLEX = {jnp.dtype(jnp.float32): jnp.complex64, jnp.dtype(jnp.float64): jnp.complex128}


class MomentPair(NamedTuple):
  """A 16-bit leaf's two moments, kept apart (a type of its own, so that a
  tuple in the parameters' tree is never taken for one)."""

  mu: jax.Array
  nu: jax.Array


class ScaleByPackedAdamState(NamedTuple):
  """State of :func:`scale_by_packed_adam`.

  Attributes:
    count: number of updates so far (int32).
    mu_nu: per leaf, ``mu + 1j * nu`` (float32 and float64 leaves), a
      :class:`MomentPair` (bfloat16, float16) or ``None`` (no moments). Shaped and
      sharded like the parameters, so ``optax.tree.map_params`` hands the
      complex arrays to its function too (a sharding or a shape-preserving map
      suits them; a cast to a real dtype would drop ``nu``).
  """

  count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
  mu_nu: optax.Updates


def _zeros(p: Any) -> Any:
  if p is None or not jnp.issubdtype(p.dtype, jnp.floating):
    return None
  if p.dtype in _COMPLEX:
    return jnp.zeros_like(p, dtype=_COMPLEX[p.dtype])
  return MomentPair(jnp.zeros_like(p), jnp.zeros_like(p))


def _unpack(mu_nu: Any) -> MomentPair:
  if isinstance(mu_nu, MomentPair):
    return mu_nu
  return MomentPair(jnp.real(mu_nu), jnp.imag(mu_nu))


def moments(state: ScaleByPackedAdamState) -> tuple[optax.Updates, optax.Updates]:
  """``(mu, nu)``, Adam's two moments, as trees like the parameters
  (``None`` where a leaf has none)."""
  is_pair = lambda x: isinstance(x, MomentPair)
  pairs = jax.tree.map(_unpack, state.mu_nu, is_leaf=is_pair)
  mu = jax.tree.map(lambda x: x.mu, pairs, is_leaf=is_pair)
  nu = jax.tree.map(lambda x: x.nu, pairs, is_leaf=is_pair)
  return mu, nu


def scale_by_packed_adam(
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
) -> optax.GradientTransformation:
  """``optax.scale_by_adam`` with each leaf's two moments in one array.

  Same updates as ``optax.scale_by_adam(b1, b2, eps, eps_root)`` (see the
  module doc for why the state differs); read the moments with
  :func:`moments`.

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the denominator's square root.
    eps_root: added to the second moment inside the square root.

  Returns:
    An ``optax.GradientTransformation``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> from qsgd_optax.packed_adam import moments, scale_by_packed_adam
    >>> tx = scale_by_packed_adam()
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, state = tx.update({"w": jnp.array([0.5, 1.0])}, tx.init(params))
    >>> updates["w"].round(4)  # the first step is sign(g), up to the bias correction
    Array([1., 1.], dtype=float32)
    >>> moments(state)[0]["w"]
    Array([0.05, 0.1 ], dtype=float32)

  References:
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014.
  """

  def init_fn(params: optax.Params) -> ScaleByPackedAdamState:
    mu_nu = jax.tree.map(_zeros, params, is_leaf=lambda x: x is None)
    return ScaleByPackedAdamState(jnp.zeros([], jnp.int32), mu_nu)

  def leaf(g: Any, mu_nu: Any, count: jax.Array) -> tuple[Any, Any]:
    if g is None or mu_nu is None:
      return g, mu_nu
    old_mu, old_nu = _unpack(mu_nu)
    mu = optax.tree.update_moment(g, old_mu, b1, 1).astype(old_mu.dtype)
    nu = optax.tree.update_moment_per_elem_norm(g, old_nu, b2, 2).astype(old_nu.dtype)
    if not isinstance(mu_nu, MomentPair):
      # The barrier keeps XLA from rewriting real(complex(mu, nu)) to mu, which
      # would hand mu and nu to a second loop (recomputing the gradient there).
      mu_nu = jax.lax.optimization_barrier(jax.lax.complex(mu, nu))
      mu, nu = _unpack(mu_nu)
    else:
      mu_nu = MomentPair(mu, nu)
    mu_hat = optax.tree.bias_correction(mu, b1, count)
    nu_hat = optax.tree.bias_correction(nu, b2, count)
    return mu_hat / (jnp.sqrt(nu_hat + eps_root) + eps), mu_nu

  def update_fn(
    updates: optax.Updates,
    state: ScaleByPackedAdamState,
    params: Optional[optax.Params] = None,
  ) -> tuple[optax.Updates, ScaleByPackedAdamState]:
    del params
    count = optax.safe_increment(state.count)
    leaves, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
    pairs = [
      leaf(g, m, count)
      for g, m in zip(leaves, treedef.flatten_up_to(state.mu_nu))  # type: ignore[attr-defined]
    ]
    new_updates = jax.tree.unflatten(treedef, [u for u, _ in pairs])
    mu_nu = jax.tree.unflatten(treedef, [m for _, m in pairs])
    return new_updates, ScaleByPackedAdamState(count, mu_nu)

  return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["MomentPair", "ScaleByPackedAdamState", "moments", "scale_by_packed_adam"]
