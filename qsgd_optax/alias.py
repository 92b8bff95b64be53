"""The optimizer: ``optax.adamw`` with the circuit's perturbation, on optax's own Adam state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from qsgd_optax import _checks
from qsgd_optax.circuit import Entanglement
from qsgd_optax.superpose import CircuitOptions, perturb, require_params, step_key

PLACEMENTS = ("gradient", "update", "direction")

# The direction placement scales Adam's step by 1 + lambda * m with |m| <= 1;
# a schedule's (or an injected) lambda is clipped here so the factor stays > 0.
_DIRECTION_CLIP = 0.99


class ScaleByQSGDState(NamedTuple):
  """State of :func:`scale_by_qsgd`.

  Attributes:
    adam: ``optax.scale_by_adam``'s state, ``(count, mu, nu)``, unchanged:
      ``optax.tree.get(state, "mu")`` finds the first moment, and an
      ``optax.adamw`` state's moments carry over with ``optax.tree.set``.
    key: raw ``uint32`` PRNG key, split every step when ``shots`` is set.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import qsgd_optax
    >>> state = qsgd_optax.scale_by_qsgd().init({"w": jnp.zeros((2, 3))})
    >>> optax.tree.get(state, "mu")["w"].shape, state.key.shape
    ((2, 3), (2,))
  """

  adam: optax.ScaleByAdamState
  key: jax.Array


def scale_by_qsgd(
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  mu_dtype: Optional[Any] = None,
  *,
  nesterov: bool = False,
  quantum_weight: optax.ScalarOrSchedule = 0.5,
  placement: str = "gradient",
  n_qubits: int = 4,
  entanglement: Entanglement = None,
  layers: int = 1,
  coverage: str = "all",
  backend: str = "auto",
  shots: Optional[int] = None,
  key: Union[int, jax.Array] = 0,
  circuit: Optional[Callable[[jax.Array], Any]] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""``optax.scale_by_adam`` with the circuit's modulation ``m(theta)`` at one placement.

  ============  ==========================================================
  placement     direction
  ============  ==========================================================
  gradient      ``adam(g * (1 + lambda * m))``
  update        ``adam(g) + lambda * m * g`` (the paper's literal rule)
  direction     ``adam(g) * (1 + lambda * m)``, ``|lambda| < 1``
  ============  ==========================================================

  ``quantum_weight`` schedules are evaluated at Adam's step count. Which
  placement to use: :doc:`/guide/placement`.

  Args:
    b1: decay rate of the first moment.
    b2: decay rate of the second moment.
    eps: added to the denominator's square root.
    eps_root: added to the second moment inside the square root.
    mu_dtype: dtype of the first moment (``None``: the parameters').
    nesterov: whether to use Nesterov momentum, as in ``optax.scale_by_adam``.
    quantum_weight: ``lambda``, a float or a schedule.
    placement: ``"gradient"``, ``"update"`` or ``"direction"``.
    n_qubits: qubits per circuit, as in :func:`~qsgd_optax.superpose`.
    entanglement: the CNOT pattern, as in :func:`~qsgd_optax.superpose`.
    layers: rotation and entangling layers, as in :func:`~qsgd_optax.superpose`.
    coverage: which entries are modulated, as in :func:`~qsgd_optax.superpose`.
    backend: how the circuit is evaluated, as in :func:`~qsgd_optax.superpose`.
    shots: measurement shots, as in :func:`~qsgd_optax.superpose`.
    key: seed or PRNG key for ``shots``.
    circuit: a user circuit, as in :func:`~qsgd_optax.superpose`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import qsgd_optax
    >>> tx = qsgd_optax.scale_by_qsgd(quantum_weight=0.0)
    >>> params = jnp.array([0.3, -1.2])
    >>> updates, state = tx.update(jnp.array([0.5, -2.0]), tx.init(params), params)
    >>> updates.round(4)  # Adam's first step: sign(g), up to eps
    Array([ 1., -1.], dtype=float32)
    >>> optax.tree.get(state, "mu")
    Array([ 0.05, -0.2 ], dtype=float32)

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.

    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014.
  """
  _checks.choice(placement, "placement", PLACEMENTS)
  _checks.adam(b1, b2, eps, eps_root)
  _checks.weight(quantum_weight, bound=1.0 if placement == "direction" else None)
  rule = CircuitOptions(
    n_qubits=n_qubits,
    entanglement=entanglement,
    layers=layers,
    coverage=coverage,
    backend=backend,
    shots=shots,
    key=key,
    circuit=circuit,
  ).rule()
  adam = optax.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
  # A constant zero weight is optax.scale_by_adam exactly, with no circuit.
  off = (
    not callable(quantum_weight)
    and not _checks.is_traced(quantum_weight)
    and (float(quantum_weight) == 0.0)
  )

  def init_fn(params: optax.Params) -> ScaleByQSGDState:
    return ScaleByQSGDState(adam.init(params), _checks.key(key))

  def update_fn(
    updates: optax.Updates,
    state: ScaleByQSGDState,
    params: Optional[optax.Params] = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ScaleByQSGDState]:
    del extra_args
    params = require_params(params)
    count = state.adam.count
    weight = quantum_weight(count) if callable(quantum_weight) else quantum_weight
    new_key, key_now = step_key(state.key, shots)
    if off:
      direction, adam_state = adam.update(updates, state.adam, params)
    elif placement == "gradient":
      perturbed = perturb(rule, "factor", updates, params, weight, key_now)
      direction, adam_state = adam.update(perturbed, state.adam, params)
    elif placement == "update":
      direction, adam_state = adam.update(updates, state.adam, params)
      term = perturb(rule, "term", updates, params, weight, key_now)
      direction = optax.tree.add(direction, term)
    else:
      weight = jnp.clip(weight, -_DIRECTION_CLIP, _DIRECTION_CLIP)
      direction, adam_state = adam.update(updates, state.adam, params)
      direction = perturb(rule, "factor", direction, params, weight, key_now)
    return direction, ScaleByQSGDState(adam_state, new_key)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def qsgd(
  learning_rate: optax.ScalarOrSchedule,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  mu_dtype: Optional[Any] = None,
  weight_decay: optax.ScalarOrSchedule = 1e-4,
  mask: Optional[Union[Any, Callable[[optax.Params], Any]]] = None,
  *,
  nesterov: bool = False,
  quantum_weight: optax.ScalarOrSchedule = 0.5,
  placement: str = "gradient",
  n_qubits: int = 4,
  entanglement: Entanglement = None,
  layers: int = 1,
  coverage: str = "all",
  backend: str = "auto",
  shots: Optional[int] = None,
  key: Union[int, jax.Array] = 0,
  circuit: Optional[Callable[[jax.Array], Any]] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Superpositional Gradient Descent: ``optax.adamw`` with a quantum perturbation.

  Takes what ``optax.adamw`` takes, in the same order, and the circuit's
  options as keywords. With the default ``placement="gradient"`` each
  gradient entry is scaled by ``1 + lambda * m(theta)``, where ``m`` is the
  measurement of a small circuit at angles ``pi * theta`` (without
  entanglement ``m = sin(pi * theta)``), before AdamW; the update is

  .. math::
    u = -\alpha \left(\mathrm{adam}\big(g \odot (1 + \lambda\, m(\theta))\big)
      + w\, \theta\right).

  The state holds ``optax.scale_by_adam``'s, so ``optax.tree.get(state,
  "mu")`` reads the moments, and ``quantum_weight=0`` gives ``optax.adamw``'s
  updates. This is ``optax.chain(scale_by_qsgd(...),
  optax.add_decayed_weights(weight_decay, mask),
  optax.scale_by_learning_rate(learning_rate))``. Guide: :doc:`/guide/use`.

  Args:
    learning_rate: a float or a schedule.
    b1: decay rate of the first moment, in [0, 1).
    b2: decay rate of the second moment, in [0, 1).
    eps: added to the denominator's square root, at least 0.
    eps_root: added to the second moment inside the square root, at least 0.
    mu_dtype: dtype of the first moment (``None``: the parameters').
    weight_decay: decoupled weight decay, at least 0, or a schedule.
    mask: which parameters get weight decay, as in ``optax.adamw``.
    nesterov: whether to use Nesterov momentum, as in ``optax.adamw``.
    quantum_weight: ``lambda``, a float or a schedule.
    placement: ``"gradient"``, ``"update"`` or ``"direction"`` (:func:`scale_by_qsgd`).
    n_qubits: qubits per circuit, as in :func:`~qsgd_optax.superpose`.
    entanglement: the CNOT pattern, as in :func:`~qsgd_optax.superpose`.
    layers: rotation and entangling layers, as in :func:`~qsgd_optax.superpose`.
    coverage: which entries are modulated, as in :func:`~qsgd_optax.superpose`.
    backend: how the circuit is evaluated, as in :func:`~qsgd_optax.superpose`.
    shots: measurement shots, as in :func:`~qsgd_optax.superpose`.
    key: seed or PRNG key for ``shots``.
    circuit: a user circuit, as in :func:`~qsgd_optax.superpose`.

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

    Loshchilov and Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019.
  """
  _checks.hyperparameter(learning_rate, "learning_rate")
  _checks.hyperparameter(weight_decay, "weight_decay", low=0.0)
  return optax.chain(
    scale_by_qsgd(
      b1,
      b2,
      eps,
      eps_root,
      mu_dtype,
      nesterov=nesterov,
      quantum_weight=quantum_weight,
      placement=placement,
      n_qubits=n_qubits,
      entanglement=entanglement,
      layers=layers,
      coverage=coverage,
      backend=backend,
      shots=shots,
      key=key,
      circuit=circuit,
    ),
    optax.add_decayed_weights(weight_decay, mask),
    optax.scale_by_learning_rate(learning_rate),
  )


__all__ = ["PLACEMENTS", "ScaleByQSGDState", "qsgd", "scale_by_qsgd"]
