"""How far does an optimizer move Adam's training? The mechanism study.

From one init, data order and dropout keys per seed, :func:`trace` trains a
variant and the Adam reference side by side (both see the same batches and
dropout keys) and records, every epoch:

* ``distance``: ``||theta_x - theta_adam|| / ||theta_adam - theta_0||``, how
  far the variant's trajectory is from Adam's, relative to how far Adam went;
* ``update_change``: the mean over the epoch's steps of
  ``||u_x - u_adam|| / ||u_adam||`` where ``u_x`` is the variant's update *at
  Adam's parameters and gradient* (its state shadows Adam's trajectory, as in
  :func:`qsgd_optax.update_change`), so chaotic divergence of the
  trajectories does not enter;
* ``test_acc`` of both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional

import jax
import numpy as np
import optax

from qsgd_optax import relative_change
from study.classification import (
  ClassificationSetup,
  Problem,
  optimizer,
  run_epochs,
)


def matched_noise_eta(setup: ClassificationSetup, weight: float, seed: int = 0) -> float:
  """``optax.add_noise`` variance matching ``qsgd``'s perturbation at the start.

  ``weight * sin(pi * theta) * g`` has RMS about ``weight * rms(g) / sqrt(2)``
  (``sin`` of spread-out angles has RMS ``1/sqrt(2)``); the variance returned
  makes Gaussian noise of that RMS with the first batch's gradient.
  """
  prob = Problem(setup, [seed])
  params = jax.tree.map(lambda p: p[0], prob.params)
  idx, keys = prob.batches(prob.keys[0])
  g = jax.jit(jax.grad(prob.loss))(params, idx[0], keys[0])  # Compiled: op by op is slower.
  rms = optax.tree.norm(g) / np.sqrt(optax.tree.size(g))
  return float((weight * rms / np.sqrt(2)) ** 2)


def trace(
  setup: ClassificationSetup,
  variant: str,
  seeds: Sequence[int],
  on_epoch: Optional[Callable[[int], None]] = None,
) -> list[dict[str, Any]]:
  """Trains ``variant`` beside Adam; per-epoch distance, update change, accuracy.

  Seeds' keys, batches and dropout are :func:`~study.train_seeds`'s
  (the same loop, :func:`~study.classification.run_epochs`).
  """
  prob = Problem(setup, seeds)
  base = optimizer("adamw", setup.learning_rate, setup.weight_decay)
  tx = optimizer(variant, setup.learning_rate, setup.weight_decay)
  # Adam's params and state, the variant's, the variant's shadowing Adam's.
  State = tuple[Any, Any, Any, Any, Any]
  Carry = tuple[State, Any]  # With the initial params, to measure distances from.

  def epoch(carry: Carry, key: jax.Array) -> tuple[Carry, tuple[jax.Array, ...]]:
    def step(state: State, inputs: tuple[jax.Array, jax.Array]) -> tuple[State, jax.Array]:
      pa, sa, px, sx, sh = state
      idx, k = inputs
      ga = jax.grad(prob.loss)(pa, idx, k)
      gx = jax.grad(prob.loss)(px, idx, k)
      ua, sa = base.update(ga, sa, pa)
      ux, sx = tx.update(gx, sx, px)
      ush, sh = tx.update(ga, sh, pa)
      change = relative_change(ush, ua)
      pa, px = optax.apply_updates(pa, ua), optax.apply_updates(px, ux)
      return (pa, sa, px, sx, sh), change

    state, theta0 = carry
    state, change = jax.lax.scan(step, state, prob.batches(key))
    pa, px = state[0], state[2]
    distance = optax.tree.norm(optax.tree.sub(px, pa)) / optax.tree.norm(optax.tree.sub(pa, theta0))
    return (state, theta0), (distance, change.mean(), prob.accuracy(px), prob.accuracy(pa))

  p0 = prob.params
  state = (p0, jax.vmap(base.init)(p0), p0, jax.vmap(tx.init)(p0), jax.vmap(tx.init)(p0))
  run = run_epochs(epoch, (state, p0), prob.keys, setup.epochs, on_epoch)
  names = ("distance", "update_change", "test_acc", "adam_test_acc")
  return [
    dict(
      variant=variant,
      seed=seed,
      task=setup.task,
      **{n: [float(out[j][i]) for out in run.outputs] for j, n in enumerate(names)},
    )
    for i, seed in enumerate(seeds)
  ]


__all__ = ["matched_noise_eta", "trace"]
