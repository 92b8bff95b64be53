"""Controls for the mechanism study: perturbations with no circuit in them.

:func:`fixed_modulation` multiplies each coordinate by ``1 + scale * u`` with
``u ~ U[-1, 1]`` drawn once per coordinate. With ``scale=1e-6`` it is the
noise floor (a change no optimizer should notice); with ``scale=lambda`` it is
a random, circuit-free modulation of the same size as ``qsgd``'s
``1 + lambda * sin(pi * theta)``, so it tells whether the circuit's dependence
on ``theta`` matters beyond being some per-coordinate factor.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax


class FixedModulationState(NamedTuple):
  factor: optax.Updates


def fixed_modulation(scale: float, seed: int = 0) -> optax.GradientTransformation:
  """``u -> u * (1 + scale * r)``, ``r ~ U[-1, 1]`` fixed per coordinate.

  Examples:
    >>> import jax.numpy as jnp
    >>> from study.controls import fixed_modulation
    >>> tx = fixed_modulation(0.5)
    >>> g = {"w": jnp.ones(4)}
    >>> u, _ = tx.update(g, tx.init(g))
    >>> bool(jnp.all((u["w"] >= 0.5) & (u["w"] <= 1.5)))
    True
  """

  def init_fn(params: optax.Params) -> FixedModulationState:
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), max(len(leaves), 1))
    factors = [
      1 + scale * jax.random.uniform(k, jnp.shape(x), minval=-1.0, maxval=1.0)
      for k, x in zip(keys, leaves)
    ]
    return FixedModulationState(jax.tree.unflatten(treedef, factors))

  def update_fn(
    updates: optax.Updates, state: FixedModulationState, params: Optional[optax.Params] = None
  ) -> tuple[optax.Updates, FixedModulationState]:
    del params
    new = jax.tree.map(lambda u, f: (u * f).astype(u.dtype), updates, state.factor)
    return new, state

  return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["FixedModulationState", "fixed_modulation"]
