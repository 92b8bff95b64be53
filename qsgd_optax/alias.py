"""The whole optimizer as one alias, like ``optax.adamw``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import optax

from qsgd_optax import _checks
from qsgd_optax.circuit import Entanglement
from qsgd_optax.packed_adam import scale_by_packed_adam
from qsgd_optax.superpose import CircuitOptions, perturbation

PLACEMENTS = ("gradient", "update", "direction")


def _sum_of(
  a: optax.GradientTransformation, b: optax.GradientTransformation
) -> optax.GradientTransformationExtraArgs:
  """Applies ``a`` and ``b`` to the same input and adds their outputs."""
  a = optax.with_extra_args_support(a)
  b = optax.with_extra_args_support(b)

  def init_fn(params: optax.Params) -> tuple[optax.OptState, optax.OptState]:
    return (a.init(params), b.init(params))

  def update_fn(
    updates: optax.Updates,
    state: tuple[optax.OptState, optax.OptState],
    params: Optional[optax.Params] = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, tuple[optax.OptState, optax.OptState]]:
    ua, sa = a.update(updates, state[0], params, **extra_args)
    ub, sb = b.update(updates, state[1], params, **extra_args)
    return optax.tree.add(ua, ub), (sa, sb)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def qsgd(
  learning_rate: optax.ScalarOrSchedule,
  quantum_weight: optax.ScalarOrSchedule = 0.5,
  n_qubits: int = 4,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  weight_decay: float = 1e-4,
  mask: Optional[Union[Any, Callable[[optax.Params], Any]]] = None,
  placement: str = "gradient",
  *,
  entanglement: Entanglement = None,
  layers: int = 1,
  coverage: str = "all",
  backend: str = "auto",
  shots: Optional[int] = None,
  key: Union[int, jax.Array] = 0,
  circuit: Optional[Callable[[jax.Array], Any]] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Superpositional Gradient Descent: AdamW with a quantum perturbation.

  Every placement is the same three parts, ``optax.chain(direction,
  optax.add_decayed_weights(weight_decay, mask),
  optax.scale_by_learning_rate(learning_rate))``, with ``adam =
  scale_by_packed_adam(b1, b2, eps)`` (``optax.scale_by_adam``'s updates,
  both moments of a leaf in one array, so that XLA:CPU writes them in one
  loop that evaluates the circuit once: :mod:`qsgd_optax.packed_adam`) and
  ``superpose`` built from the same circuit options; only ``direction``
  differs:

  ============  ==============================================================
  placement     direction
  ============  ==============================================================
  gradient      ``chain(superpose, adam)``: perturb the raw gradient
  update        ``adam + lambda * m(theta) * g``: the paper's literal rule
  direction     ``chain(adam, superpose)``, ``|lambda| < 1``
  ============  ==============================================================

  ``placement="gradient"`` (default) is therefore
  ``optax.chain(superpose(...), optax.adamw(...))`` in value. Adam normalises
  the perturbed gradient, so the step size stays bounded by the learning rate
  whatever ``quantum_weight`` and the gradient's scale.

  ``placement="update"`` is the paper's literal rule

  .. math::
    \theta_{t+1} = \theta_t - \alpha \left(\frac{\hat m_t}{\sqrt{\hat v_t}
      + \epsilon} + \lambda\, Q(\theta_t, g_t)\right)
      - \alpha\, w\, \theta_t,
    \qquad Q(\theta, g)_i = m_i(\theta)\, g_i,

  with decoupled weight decay ``w``. Its perturbation is *not* normalised:
  where ``|lambda * g| > 1`` it can cancel the Adam step (whose size is about
  1), and in every period of ``sin(pi * theta)`` there is then a point where
  ``lambda * m(theta) * g = -m_hat / sqrt(v_hat)``: a false stationary point.
  On ``sum((x - [1, -1, 1])**2)`` from ``[-1, 10, 1]`` (lr 1e-2, lambda 0.5)
  it stays at ``x ~ [-0.81, 9.97, 1]`` after 30k steps, and it diverges on
  Rosenbrock, where the default placement converges (``tests/test_alias.py``).
  Prefer the default unless reproducing the paper verbatim.

  ``placement="direction"`` multiplies Adam's *normalised* step by the
  modulation, per coordinate:

  .. math::
    \theta_{t+1} = \theta_t - \alpha \left(1 + \lambda\, m(\theta_t)\right)
      \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} - \alpha\, w\, \theta_t,

  i.e. ``chain(scale_by_adam, superpose, add_decayed_weights,
  scale_by_learning_rate)``. This is the paper's stated intent (boost or damp
  each parameter's step in a wave-like way) in a form Adam's normalisation
  cannot undo: under ``"gradient"`` a positive per-coordinate rescaling of
  the gradient largely cancels in ``m_hat / sqrt(v_hat)``, and under
  ``"update"`` the added term is ``lambda * m * g``, tiny beside Adam's O(1)
  step when gradients are small. For ``|lambda| < 1`` the factor stays in
  ``(0, 2)``, so the step never changes sign and there is no false stationary
  point. A constant ``quantum_weight`` with ``|lambda| >= 1`` raises a
  ``ValueError``; a schedule's values are clipped to ``[-0.99, 0.99]``.

  Args:
    learning_rate: a float or a schedule.
    quantum_weight: ``lambda``, a float or a schedule.
    n_qubits: qubits per circuit.
    b1, b2, eps: Adam's parameters.
    weight_decay: decoupled weight decay.
    mask: which parameters get weight decay, as in ``optax.adamw``.
    placement: ``"gradient"``, ``"update"`` or ``"direction"`` (see above).
    entanglement, layers, coverage, backend, shots, key, circuit: the
      perturbation circuit, as in :func:`superpose`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import optax
    >>> import qsgd_optax
    >>> opt = qsgd_optax.qsgd(learning_rate=0.1)
    >>> params = jnp.array([-1.0, 2.0, 0.3])
    >>> state = opt.init(params)
    >>> loss = lambda p: jnp.sum((p - 1.0) ** 2)
    >>> for _ in range(200):
    ...   updates, state = opt.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 1e-2)
    True

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """
  _checks.choice(placement, "placement", PLACEMENTS)
  options = CircuitOptions.of(locals())
  adam = scale_by_packed_adam(b1, b2, eps)
  if placement == "gradient":
    direction = optax.chain(perturbation(quantum_weight, options), adam)
  elif placement == "update":
    direction = _sum_of(adam, perturbation(quantum_weight, options, combine="term"))
  else:
    direction = optax.chain(adam, perturbation(_below_one(quantum_weight), options))
  return optax.chain(
    direction,
    optax.add_decayed_weights(weight_decay, mask),
    optax.scale_by_learning_rate(learning_rate),
  )


def _below_one(quantum_weight: optax.ScalarOrSchedule) -> optax.ScalarOrSchedule:
  """The direction placement's weight: a constant must satisfy ``|lambda| < 1``
  (the factor ``1 + lambda * m`` then stays in ``(0, 2)``); a schedule's or a
  traced value is clipped to ``[-0.99, 0.99]``."""
  _checks.weight(quantum_weight, bound=1.0)
  clip = lambda w: jnp.clip(w, -0.99, 0.99)
  if callable(quantum_weight):
    return lambda count: clip(quantum_weight(count))
  return clip(quantum_weight) if _checks.is_traced(quantum_weight) else quantum_weight


__all__ = ["PLACEMENTS", "qsgd"]
