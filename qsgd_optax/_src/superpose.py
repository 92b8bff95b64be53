"""The ``superpose`` gradient transformation: the perturbation alone, to chain with others."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from qsgd_optax._src import checks
from qsgd_optax._src.circuit import Circuit, check_circuit, takes_one_circuit
from qsgd_optax._src.modulation import modulations, scale


class SuperposeState(NamedTuple):
  """State of :func:`superpose`.

  Attributes:
    count: number of updates so far (int32), for ``quantum_weight`` schedules.
    key: raw ``uint32`` PRNG key, split every step when the circuit samples shots.

  Examples:
    >>> import jax.numpy as jnp
    >>> import qsgd_optax
    >>> tx = qsgd_optax.superpose(0.5)
    >>> params = {"w": jnp.zeros(3)}
    >>> _, state = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
    >>> int(state.count), state.key.shape, state.key.dtype
    (1, (2,), dtype('uint32'))
  """

  count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
  key: jax.Array


def step_key(key: jax.Array, shots: Any) -> tuple[jax.Array, Optional[jax.Array]]:
  """``(next key, this step's key)``; the key only moves when shots are sampled."""
  if shots is None:
    return key, None
  new_key, key_now = jax.random.split(key)
  return new_key, key_now


def require_params(params: Optional[optax.Params]) -> optax.Params:
  if params is None:
    raise ValueError(
      "The circuit's modulation depends on the parameters' values: "
      "params are required, call update(updates, state, params)."
    )
  return params


@takes_one_circuit
def superpose(
  quantum_weight: optax.ScalarOrSchedule = 0.5,
  circuit: Circuit = Circuit(),
  *,
  key: Union[int, jax.Array] = 0,
) -> optax.GradientTransformationExtraArgs:
  r"""Perturbs each gradient entry by a simulated quantum circuit's measurement.

  Returns ``g * (1 + quantum_weight * m(theta))`` for every floating leaf,
  where ``m`` is the modulation of the :class:`~qsgd_optax.Circuit` at the
  matching parameters (without entanglement ``m = sin(pi * theta)``, the
  paper's rule :math:`Q(\theta, g)_i = \sin(\pi\theta_i)\, g_i`). Non-float
  leaves and ``None`` pass through; dtypes are kept; a finite update stays
  finite. Details: :doc:`/guide/use`.

  Args:
    quantum_weight: ``lambda``, a float or a schedule of the step count.
    circuit: the circuit, a :class:`~qsgd_optax.Circuit`.
    key: seed or PRNG key of the circuit's shots.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import qsgd_optax
    >>> tx = qsgd_optax.superpose(0.5)
    >>> params = {"w": jnp.array([0.25, -1.5, 2.0])}
    >>> updates, state = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
    >>> updates["w"]
    Array([1.3535534, 1.5      , 1.       ], dtype=float32)

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """
  checks.weight(quantum_weight)
  circuit = check_circuit(circuit)
  checks.key(key)

  def init_fn(params: optax.Params) -> SuperposeState:
    del params
    return SuperposeState(jnp.zeros([], jnp.int32), checks.key(key))

  def update_fn(
    updates: optax.Updates,
    state: SuperposeState,
    params: Optional[optax.Params] = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, SuperposeState]:
    del extra_args
    params = require_params(params)
    weight = quantum_weight(state.count) if callable(quantum_weight) else quantum_weight
    new_key, key_now = step_key(state.key, circuit.shots)
    updates = scale(updates, weight, modulations(circuit, updates, params, key_now))
    return updates, SuperposeState(optax.safe_increment(state.count), new_key)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["SuperposeState", "superpose"]
