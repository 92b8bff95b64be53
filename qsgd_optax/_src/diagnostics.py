"""Does the perturbation change my training? Measure it on your own model.

:func:`update_change` runs a perturbed optimizer and its base optimizer side
by side for a few steps on the same gradients and parameters (the base
optimizer's trajectory; the perturbed one *shadows* it, so chaotic divergence
of two trajectories does not enter) and reports how far apart their updates
are, overall and per leaf. A relative change of ``1e-6`` means the
perturbation is numerically inert on your model; ``0.3`` means it reshapes the
step. Adam's normalisation is why ``placement="gradient"`` is usually tiny: a
positive per-coordinate rescaling of the gradient cancels in
``m_hat / sqrt(v_hat)`` (exactly so on the first step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class UpdateChange(NamedTuple):
  """How a perturbed optimizer's updates differ from its base's, per step.

  Attributes:
    relative: ``(steps,)`` ``||u - u_base|| / ||u_base||`` over all leaves.
    cosine: ``(steps,)`` cosine similarity of ``u`` and ``u_base``.
    per_leaf: a tree like the params of ``(steps,)`` relative changes
      (``0`` where both updates are zero; ``None`` for non-float leaves).

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import qsgd_optax
    >>> from qsgd_optax import update_change
    >>> params = {"w": jnp.linspace(-1.0, 1.0, 8)}
    >>> grad_fn = lambda p, i: jax.grad(lambda q: jnp.sum((q["w"] - 0.3) ** 2))(p)
    >>> tx = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, placement="direction")
    >>> change = update_change(tx, optax.adamw(1e-2), grad_fn, params, steps=3)
    >>> change.relative.shape, change.cosine.shape, change.per_leaf["w"].shape
    ((3,), (3,), (3,))
  """

  relative: jax.Array
  cosine: jax.Array
  per_leaf: Any


def relative_change(a: Any, b: Any) -> jax.Array:
  """``||a - b|| / ||b||`` of two like trees (or arrays), over their float leaves.

  Norms are taken in float32 over all float leaves together (non-float leaves
  are skipped). Where ``b`` is zero the change is ``0`` if ``a`` is zero too,
  ``inf`` otherwise.

  Args:
    a: a tree (or array).
    b: the reference, a tree (or array) like ``a``.

  Returns:
    A float32 scalar array.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import relative_change
    >>> float(relative_change({"w": jnp.array([3.0, 1.0])}, {"w": jnp.array([0.0, 5.0])}))
    1.0
    >>> float(relative_change(jnp.zeros(2), jnp.zeros(2)))
    0.0
  """
  fa, fb = _float_leaves(a), _float_leaves(b)
  na = optax.tree.norm(jax.tree.map(lambda x, y: (x - y).astype(jnp.float32), fa, fb))
  nb = optax.tree.norm(jax.tree.map(lambda y: jnp.asarray(y).astype(jnp.float32), fb))
  return jnp.where(nb > 0, na / jnp.where(nb > 0, nb, 1), jnp.where(na > 0, jnp.inf, 0.0))


def _float_leaves(tree: Any) -> Any:
  return jax.tree.map(
    lambda x: x if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else None, tree
  )


def update_change(
  tx: optax.GradientTransformation,
  base: optax.GradientTransformation,
  grad_fn: Callable[[optax.Params, jax.Array], optax.Updates],
  params: optax.Params,
  steps: int = 1,
) -> UpdateChange:
  """Relative change of ``tx``'s updates against ``base``'s, step by step.

  Both optimizers start from ``init(params)``. At every step both see the
  same gradient ``grad_fn(params, step)`` and the same ``params``; the
  parameters then move by ``base``'s update. So the numbers isolate what the
  perturbation does to one step, along the trajectory you would train on.

  Args:
    tx: the perturbed optimizer, e.g. ``qsgd_optax.qsgd(1e-3, quantum_weight=0.5)``.
    base: the optimizer it perturbs, e.g. ``optax.adamw(1e-3, weight_decay=1e-4)``
      (use the same hyperparameters).
    grad_fn: ``(params, step) -> grads``, traceable by ``jax.jit`` (``step``
      is a traced int32; index your batches with it).
    params: the starting parameters.
    steps: number of steps.

  Returns:
    An :class:`UpdateChange` with one entry per step.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import qsgd_optax
    >>> from qsgd_optax import update_change
    >>> params = {"w": jnp.linspace(-1.0, 1.0, 8)}
    >>> grad_fn = lambda p, i: jax.grad(lambda q: jnp.sum((q["w"] - 0.3) ** 2))(p)
    >>> base = optax.adamw(1e-2, weight_decay=1e-4)
    >>> grad_place = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, placement="gradient")
    >>> direction = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, placement="direction")
    >>> float(update_change(grad_place, base, grad_fn, params).relative[0]) < 1e-6
    True
    >>> float(update_change(direction, base, grad_fn, params).relative[0]) > 0.1
    True
  """
  tx = optax.with_extra_args_support(tx)
  base = optax.with_extra_args_support(base)

  Carry = tuple[optax.Params, optax.OptState, optax.OptState]

  def step(carry: Carry, i: jax.Array) -> tuple[Carry, tuple[jax.Array, jax.Array, Any]]:
    p, s_tx, s_base = carry
    g = grad_fn(p, i)
    u_base, s_base = base.update(g, s_base, p)
    u_tx, s_tx = tx.update(g, s_tx, p)
    fu, fb = _float_leaves(u_tx), _float_leaves(u_base)
    per_leaf = jax.tree.map(relative_change, fu, fb)
    total = relative_change(fu, fb)
    dot = optax.tree.vdot(fu, fb)
    cosine = dot / (optax.tree.norm(fu) * optax.tree.norm(fb))
    return (optax.apply_updates(p, u_base), s_tx, s_base), (total, cosine, per_leaf)

  carry = (params, tx.init(params), base.init(params))
  _, (relative, cosine, per_leaf) = jax.lax.scan(
    jax.jit(step), carry, jnp.arange(steps, dtype=jnp.int32)
  )
  return UpdateChange(relative, cosine, per_leaf)


__all__ = ["UpdateChange", "relative_change", "update_change"]
