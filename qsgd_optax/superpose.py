"""The ``superpose`` gradient transformation and the circuit options it shares
with :func:`~qsgd_optax.qsgd`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from qsgd_optax import _checks, backends
from qsgd_optax.circuit import Entanglement, PerturbationCircuit
from qsgd_optax.modulation import LeafRule, modulate_leaf

COVERAGES = ("all", "leading")


class SuperposeState(NamedTuple):
  """State of :func:`superpose`.

  Attributes:
    count: number of updates so far (int32), for ``quantum_weight`` schedules.
    key: raw ``uint32`` PRNG key, split every step when ``shots`` is set.

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


@dataclasses.dataclass(frozen=True)
class CircuitOptions:
  """The perturbation circuit's options and their defaults, written once.

  :func:`superpose`, :func:`~qsgd_optax.qsgd` and
  :func:`~qsgd_optax.scale_by_qsgd` repeat these keywords and defaults in
  their signatures, as optax's aliases repeat ``scale_by_adam``'s
  (``tests/test_signatures.py`` checks that they agree), pass them on by
  keyword and build one of these; :meth:`rule` checks it and fixes how a leaf is
  evaluated. ``n_qubits`` and ``layers`` fix the circuit's shape, so they must
  be Python ints: under ``optax.inject_hyperparams`` name them in
  ``static_args``.

  Attributes:
    n_qubits: qubits per circuit, i.e. parameters per group (a Python int).
    entanglement: the CNOT pattern: ``None``, ``"chain"``, ``"ring"`` or
      ``(control, target)`` pairs.
    layers: number of rotation and entangling layers (a Python int).
    coverage: ``"all"`` (every entry, in groups along the last axis) or
      ``"leading"`` (only the first ``n_qubits`` entries of a leaf).
    backend: one of :data:`qsgd_optax.backends.BACKENDS`; ``"auto"`` picks
      one for the circuit.
    shots: ``None`` for exact expectations, or a number of measurement shots.
    key: seed or PRNG key for ``shots``.
    circuit: a user circuit, angles ``(n_qubits,)`` -> ``n_qubits`` values of
      ``<Z>``, run through PennyLane in place of the built-in one (``None``:
      the built-in circuit).

  Examples:
    >>> from qsgd_optax.superpose import CircuitOptions
    >>> rule = CircuitOptions(n_qubits=2, coverage="leading").rule()
    >>> rule.n_qubits, rule.coverage, rule.shots
    (2, 'leading', None)
    >>> CircuitOptions(n_qubits=4, entanglement="chain", layers=2).rule().backend.elementwise
    False
  """

  n_qubits: int = 4
  entanglement: Entanglement = None
  layers: int = 1
  coverage: str = "all"
  backend: str = "auto"
  shots: Optional[int] = None
  key: Union[int, jax.Array] = 0
  circuit: Optional[Callable[[jax.Array], Any]] = None

  def rule(self) -> LeafRule:
    """Checks every option, builds the circuit and picks its backend, so bad
    input fails when the transformation is built, not inside ``jit``."""
    _checks.choice(self.backend, "backend", backends.BACKENDS)
    _checks.choice(self.coverage, "coverage", COVERAGES)
    if self.shots is not None and not isinstance(self.shots, jax.Array):  # Arrays: injected.
      _checks.static_int(self.shots, "shots")
    _checks.key(self.key)
    n = _checks.static_int(self.n_qubits, "n_qubits")
    n_layers = _checks.static_int(self.layers, "layers")
    self._check_custom(n_layers)
    circuit = PerturbationCircuit.build(n, self.entanglement, n_layers)
    if self.circuit is not None:
      _checks.custom_circuit(self.circuit, n)
    backend = backends.select(circuit, self.backend, self.circuit)
    return LeafRule(backend, n, self.coverage, self.shots)

  def _check_custom(self, layers: int) -> None:
    """A custom ``circuit`` replaces the built-in one and its options."""
    if self.circuit is None:
      return
    if not callable(self.circuit):
      raise TypeError(f"circuit must be callable, got {self.circuit!r}.")
    if self.backend not in ("auto", "pennylane"):
      raise ValueError(
        "A custom circuit runs as given; backend must be 'auto' or 'pennylane', "
        f"got {self.backend!r}."
      )
    if self.entanglement is not None or layers != 1:
      raise ValueError(
        "entanglement and layers describe the built-in circuit; with a "
        "custom circuit leave them at None and 1."
      )


def perturb(
  rule: LeafRule,
  combine: str,
  updates: optax.Updates,
  params: optax.Params,
  weight: Any,
  key: Optional[jax.Array],
) -> optax.Updates:
  """:func:`~qsgd_optax.modulation.modulate_leaf` on every leaf of
  ``updates`` with the matching parameter (leaf ``i`` samples with
  ``fold_in(key, i)`` when ``key`` is given)."""
  leaves_g, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
  leaves_p = treedef.flatten_up_to(params)  # type: ignore[attr-defined]
  keys = [None if key is None else jax.random.fold_in(key, i) for i in range(len(leaves_g))]
  new = [modulate_leaf(rule, combine, g, p, weight, k) for g, p, k in zip(leaves_g, leaves_p, keys)]
  return jax.tree.unflatten(treedef, new)


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


def superpose(
  quantum_weight: optax.ScalarOrSchedule = 0.5,
  n_qubits: int = 4,
  *,
  entanglement: Entanglement = None,
  layers: int = 1,
  coverage: str = "all",
  backend: str = "auto",
  shots: Optional[int] = None,
  key: Union[int, jax.Array] = 0,
  circuit: Optional[Callable[[jax.Array], Any]] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Perturbs each gradient entry by a simulated quantum circuit's measurement.

  Returns ``g * (1 + quantum_weight * m(theta))`` for every floating leaf,
  where ``m = -<Z>`` of a small circuit evaluated at angles ``pi * theta``
  of the matching parameters: a Hadamard on every qubit, then ``layers``
  times ``RY(phi_i) RZ(phi_i)`` on each qubit and the entangling CNOTs.
  Without entanglement ``m = sin(pi * theta)``, the paper's rule
  :math:`Q(\theta, g)_i = \sin(\pi\theta_i)\, g_i`. Non-float leaves and
  ``None`` pass through; dtypes are kept; a finite update stays finite.
  Details: :doc:`/guide/use`.

  Args:
    quantum_weight: ``lambda``, a float or a schedule of the step count.
    n_qubits: qubits per circuit, i.e. parameters per group (a Python int).
    entanglement: ``None``, ``"chain"``, ``"ring"`` or ``(control, target)`` pairs.
    layers: number of rotation and entangling layers (a Python int).
    coverage: ``"all"`` (every entry, in groups along the last axis) or ``"leading"``.
    backend: ``"auto"``, ``"analytic"``, ``"pauli"``, ``"statevector"`` or ``"pennylane"``.
    shots: ``None`` for exact expectations, or a number of measurement shots.
    key: seed or PRNG key for ``shots``.
    circuit: a user circuit, angles ``(n_qubits,)`` -> ``n_qubits`` values of ``<Z>``.

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
  _checks.weight(quantum_weight)
  options = CircuitOptions(
    n_qubits=n_qubits,
    entanglement=entanglement,
    layers=layers,
    coverage=coverage,
    backend=backend,
    shots=shots,
    key=key,
    circuit=circuit,
  )
  rule = options.rule()

  def init_fn(params: optax.Params) -> SuperposeState:
    del params
    return SuperposeState(jnp.zeros([], jnp.int32), _checks.key(key))

  def update_fn(
    updates: optax.Updates,
    state: SuperposeState,
    params: Optional[optax.Params] = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, SuperposeState]:
    del extra_args
    params = require_params(params)
    weight = quantum_weight(state.count) if callable(quantum_weight) else quantum_weight
    new_key, key_now = step_key(state.key, shots)
    updates = perturb(rule, "factor", updates, params, weight, key_now)
    return updates, SuperposeState(optax.safe_increment(state.count), new_key)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["COVERAGES", "CircuitOptions", "SuperposeState", "perturb", "superpose"]
