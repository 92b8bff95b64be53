"""The optimizer: ``optax.adamw`` with the circuit's perturbation, on optax's own Adam state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Optional, Union, get_args

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from qsgd_optax._src import checks
from qsgd_optax._src.circuit import Circuit, check_circuit, takes_one_circuit
from qsgd_optax._src.modulation import modulations, scale, term
from qsgd_optax._src.superpose import require_params, step_key

# The placements, for a gradient g, the weight lambda, the modulation m and
# adam(x), optax.scale_by_adam's direction for the gradient x:
#   gradient   adam(g (1 + lambda m))
#   update     adam(g) + lambda m g      (the paper's literal rule)
#   direction  adam(g) (1 + lambda m)
Placement = Literal["gradient", "update", "direction"]
PLACEMENTS: tuple[Placement, ...] = get_args(Placement)
# The direction placement needs 1 + lambda * m > 0 for every |m| <= 1.
DIRECTION_BOUND = 1.0


class ScaleByQSGDState(NamedTuple):
  """State of :func:`scale_by_qsgd`.

  Attributes:
    adam: ``optax.scale_by_adam``'s state, ``(count, mu, nu)``, unchanged:
      ``optax.tree.get(state, "mu")`` finds the first moment, and an
      ``optax.adamw`` state's moments carry over with ``optax.tree.set``.
    key: raw ``uint32`` PRNG key, split every step when the circuit samples shots.

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


def _inside_direction_bound(weight: Any) -> Any:
  """A schedule's or an injected ``lambda`` held inside the open interval
  ``(-DIRECTION_BOUND, DIRECTION_BOUND)``: values inside are never changed."""
  weight = jnp.asarray(weight)
  dtype = weight.dtype if jnp.issubdtype(weight.dtype, jnp.floating) else jnp.float32
  inside = np.nextafter(np.asarray(DIRECTION_BOUND, dtype), np.asarray(0, dtype))
  return jnp.clip(weight, -inside, inside)


@takes_one_circuit
def scale_by_qsgd(
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  mu_dtype: Optional[Any] = None,
  *,
  nesterov: bool = False,
  quantum_weight: optax.ScalarOrSchedule = 0.5,
  placement: Placement = "gradient",
  circuit: Circuit = Circuit(),
  key: Union[int, ArrayLike] = 0,
) -> optax.GradientTransformationExtraArgs:
  r"""``optax.scale_by_adam`` with the circuit's modulation ``m(theta)`` at one placement.

  ============  ==========================================================
  placement     direction
  ============  ==========================================================
  gradient      ``adam(g * (1 + lambda * m))``
  update        ``adam(g) + lambda * m * g`` (the paper's literal rule)
  direction     ``adam(g) * (1 + lambda * m)``, ``|lambda| < 1``
  ============  ==========================================================

  ``quantum_weight`` schedules are evaluated at Adam's step count. Under
  ``placement="direction"`` a constant ``lambda`` outside ``(-1, 1)`` is an
  error; a schedule's (or an injected) value is held inside that interval.
  Which placement to use: :doc:`/guide/placement`.

  Args:
    b1: decay rate of the first moment.
    b2: decay rate of the second moment.
    eps: added to the denominator's square root.
    eps_root: added to the second moment inside the square root.
    mu_dtype: dtype of the first moment (``None``: the parameters').
    nesterov: whether to use Nesterov momentum, as in ``optax.scale_by_adam``.
    quantum_weight: ``lambda``, a float or a schedule.
    placement: ``"gradient"``, ``"update"`` or ``"direction"``.
    circuit: the circuit, a :class:`~qsgd_optax.Circuit`.
    key: seed or PRNG key of the circuit's shots.

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
  checks.choice(placement, "placement", PLACEMENTS)
  checks.adam(b1, b2, eps, eps_root)
  bounded = placement == "direction"
  checks.weight(quantum_weight, bound=DIRECTION_BOUND if bounded else None)
  circuit = check_circuit(circuit)
  checks.key(key)
  adam = optax.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
  # A constant zero weight is optax.scale_by_adam exactly, with no circuit.
  off = (
    not callable(quantum_weight)
    and not checks.is_traced(quantum_weight)
    and (float(quantum_weight) == 0.0)
  )

  def init_fn(params: optax.Params) -> ScaleByQSGDState:
    return ScaleByQSGDState(adam.init(params), checks.key(key))

  def update_fn(
    updates: optax.Updates,
    state: ScaleByQSGDState,
    params: Optional[optax.Params] = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ScaleByQSGDState]:
    del extra_args
    params = require_params(params)
    new_key, key_now = step_key(state.key, circuit.shots)
    if off:
      direction, adam_state = adam.update(updates, state.adam, params)
      return direction, ScaleByQSGDState(adam_state, new_key)
    weight = quantum_weight(state.adam.count) if callable(quantum_weight) else quantum_weight
    if bounded and (callable(quantum_weight) or checks.is_traced(quantum_weight)):
      weight = _inside_direction_bound(weight)
    m = modulations(circuit, updates, params, key_now)
    if placement == "gradient":
      direction, adam_state = adam.update(scale(updates, weight, m), state.adam, params)
    else:
      direction, adam_state = adam.update(updates, state.adam, params)
    if placement == "update":
      direction = optax.tree.add(direction, term(updates, weight, m))
    elif placement == "direction":
      direction = scale(direction, weight, m)
    return direction, ScaleByQSGDState(adam_state, new_key)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@takes_one_circuit
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
  placement: Placement = "gradient",
  circuit: Circuit = Circuit(),
  key: Union[int, ArrayLike] = 0,
) -> optax.GradientTransformationExtraArgs:
  r"""Superpositional Gradient Descent: ``optax.adamw`` with a quantum perturbation.

  Takes what ``optax.adamw`` takes, in the same order, and then the
  perturbation: with the default ``placement="gradient"`` each gradient entry
  is scaled by ``1 + lambda * m(theta)`` before AdamW, where ``m`` is the
  measurement of the :class:`~qsgd_optax.Circuit` at angles ``pi * theta``
  (``m = sin(pi * theta)`` for the default circuit):

  .. math::
    u = -\alpha \left(\mathrm{adam}\big(g \odot (1 + \lambda\, m(\theta))\big)
      + w\, \theta\right).

  This is ``optax.chain(scale_by_qsgd(...), optax.add_decayed_weights(weight_decay,
  mask), optax.scale_by_learning_rate(learning_rate))``: the state holds
  ``optax.scale_by_adam``'s, and ``quantum_weight=0`` is ``optax.adamw``.

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
    circuit: the circuit, a :class:`~qsgd_optax.Circuit`.
    key: seed or PRNG key of the circuit's shots.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, qsgd_optax
    >>> opt = qsgd_optax.qsgd(0.1, circuit=qsgd_optax.Circuit(entanglement="chain"))
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
  checks.hyperparameter(learning_rate, "learning_rate")
  checks.hyperparameter(weight_decay, "weight_decay", low=0.0)
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
      circuit=circuit,
      key=key,
    ),
    optax.add_decayed_weights(weight_decay, mask),
    optax.scale_by_learning_rate(learning_rate),
  )


__all__ = ["DIRECTION_BOUND", "PLACEMENTS", "ScaleByQSGDState", "qsgd", "scale_by_qsgd"]
