"""The ``superpose`` gradient transformation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from qsgd_optax import _checks, backends
from qsgd_optax.circuit import Entanglement, PerturbationCircuit
from qsgd_optax.modulation import COMBINES, LeafRule, modulate_leaf

COVERAGES = ("all", "leading")


class SuperposeState(NamedTuple):
  """State of :func:`superpose`.

  Attributes:
    count: number of updates so far (int32), for ``quantum_weight`` schedules.
    key: raw ``uint32`` PRNG key, split every step when ``shots`` is set.
    circuit: the circuit the state was built for (static: no array leaves).
  """

  count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
  key: jax.Array
  circuit: PerturbationCircuit


@dataclasses.dataclass(frozen=True)
class CircuitOptions:
  """The perturbation circuit's options, as :func:`superpose` takes them.

  One frozen object that every placement of :func:`~qsgd_optax.qsgd` hands
  on by keyword; :meth:`validate` checks it when the transformation is built.
  Values may be tracers under ``optax.inject_hyperparams``.
  """

  n_qubits: Any = 4
  entanglement: Entanglement = None
  layers: Any = 1
  coverage: str = "all"
  backend: str = "auto"
  shots: Optional[Any] = None
  key: Union[int, jax.Array] = 0
  circuit: Optional[Callable[[jax.Array], Any]] = None

  @classmethod
  def of(cls, arguments: dict[str, Any]) -> CircuitOptions:
    """The options among a factory's arguments (its ``locals()``), so that
    :func:`superpose` and :func:`~qsgd_optax.qsgd` hand them on the same way."""
    return cls(**{f.name: arguments[f.name] for f in dataclasses.fields(cls)})

  def validate(self) -> Optional[PerturbationCircuit]:
    """Checks every option and builds the circuit (and its backend) once, so
    bad input fails here, not inside ``jit``. ``None`` while ``n_qubits`` or
    ``layers`` is traced (``init`` then records the circuit in the state)."""
    _checks.choice(self.backend, "backend", backends.BACKENDS)
    _checks.choice(self.coverage, "coverage", COVERAGES)
    if self.shots is not None and not _checks.is_traced(self.shots):
      _checks.static_int(self.shots, "shots")
    self._check_custom()
    n = _checks.static_int(self.n_qubits, "n_qubits")
    n_layers = _checks.static_int(self.layers, "layers")
    if n is None or n_layers is None:
      return None
    fixed = PerturbationCircuit.build(n, self.entanglement, n_layers)
    backends.select(fixed, self.backend, self.circuit)
    if self.circuit is not None:
      _checks.custom_circuit(self.circuit, n)
    return fixed

  def _check_custom(self) -> None:
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
    if self.entanglement is not None or (not _checks.is_traced(self.layers) and self.layers != 1):
      raise ValueError(
        "entanglement and layers describe the built-in circuit; with a "
        "custom circuit leave them at None and 1."
      )


def perturbation(
  quantum_weight: optax.ScalarOrSchedule,
  options: CircuitOptions,
  combine: str = "factor",
) -> optax.GradientTransformationExtraArgs:
  """The transformation behind every placement: each float leaf ``g`` becomes
  ``g * (1 + lambda * m(theta))`` (``combine="factor"``, :func:`superpose`)
  or ``lambda * m(theta) * g`` (``"term"``, what the paper's literal rule adds
  to Adam's direction); see :mod:`qsgd_optax.modulation`."""
  _checks.weight(quantum_weight)
  _checks.choice(combine, "combine", tuple(COMBINES))
  fixed = options.validate()
  key_data = None if _checks.is_traced(options.key) else _checks.key(options.key)

  def init_fn(params: optax.Params) -> SuperposeState:
    del params
    if fixed is None:
      raise ValueError(
        "n_qubits and layers fix the circuit's shape and must be concrete "
        "when init runs. Under optax.inject_hyperparams, call init outside "
        "jax.jit, or pass static_args=('n_qubits', 'layers')."
      )
    k = key_data if key_data is not None else _checks.key(options.key)
    # A fresh array per state: donating one state must not delete another's key.
    return SuperposeState(jnp.zeros([], jnp.int32), jnp.array(k, copy=True), fixed)

  def update_fn(
    updates: optax.Updates,
    state: SuperposeState,
    params: Optional[optax.Params] = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, SuperposeState]:
    del extra_args
    if params is None:
      raise ValueError(
        "superpose modulates the gradient by the parameters' values: "
        "params are required, call update(updates, state, params)."
      )
    if fixed is not None and fixed != state.circuit:
      raise ValueError(
        f"This state was built for {state.circuit}, not {fixed}: the "
        "circuit's shape cannot change after init."
      )
    circ = state.circuit
    expval, elementwise = backends.select(circ, options.backend, options.circuit)
    rule = LeafRule(expval, elementwise, circ.n_qubits, options.coverage, options.shots)
    weight = quantum_weight(state.count) if callable(quantum_weight) else quantum_weight
    if options.shots is None:
      new_key, step_key = state.key, None
    else:
      new_key, step_key = jax.random.split(state.key)

    leaves_g, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
    leaves_p = treedef.flatten_up_to(params)  # type: ignore[attr-defined]
    new_leaves = [
      modulate_leaf(
        rule, combine, g, p, weight, None if step_key is None else jax.random.fold_in(step_key, i)
      )
      for i, (g, p) in enumerate(zip(leaves_g, leaves_p))
    ]
    count = optax.safe_increment(state.count)
    return jax.tree.unflatten(treedef, new_leaves), SuperposeState(count, new_key, circ)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


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
  r"""Perturbs gradients by a simulated quantum circuit (SGD's perturbation).

  For every floating leaf returns ``g + quantum_weight * m(theta) * g``, where
  ``m = -<Z>`` of a small circuit evaluated at angles ``pi * theta`` of the
  matching parameters. The circuit: a Hadamard on every qubit, then
  ``layers`` times ``RY(phi_i) RZ(phi_i)`` on each qubit and the entangling
  CNOTs. With ``entanglement=None`` the modulation is exactly
  ``sin(pi * theta)``, the paper's written rule
  :math:`Q(\theta, g)_i = \sin(\pi\theta_i)\, g_i`; with CNOTs it becomes a
  product of sines over each qubit's parity set (see
  :meth:`PerturbationCircuit.parity_sets`).

  Non-float leaves (ints, bools, complex), ``None`` and masked leaves pass
  through untouched; updates keep their dtype (bf16/f16 are computed in
  float32). Non-finite parameters contribute a zero modulation, and a finite
  update stays finite (it is clipped to the dtype's largest finite value).

  Args:
    quantum_weight: ``lambda``, a float or a schedule of the step count.
    n_qubits: qubits per circuit, i.e. parameters per group.
    entanglement: ``None``, ``"chain"`` (CNOT i->i+1), ``"ring"`` (chain plus
      n-1->0), or a sequence of ``(control, target)`` pairs.
    layers: number of rotation+entangling layers.
    coverage: ``"all"`` splits each leaf's last axis into consecutive groups
      of ``n_qubits`` (the tail padded with angle 0; pads never leak out), one
      circuit per group; ``"leading"`` modulates only the first ``n_qubits``
      entries of each leaf, as the paper's formula states.
    backend: ``"auto"`` (``"analytic"`` where the circuit has a closed form,
      else ``"pauli"`` up to ``backends.PAULI_MAX_TERMS`` terms, else
      ``"statevector"``: :func:`qsgd_optax.backends.auto_backend`),
      ``"analytic"`` (closed form: ``layers=1`` or no entanglement),
      ``"pauli"`` (the exact closed form of any circuit, compiled once in the
      Heisenberg picture), ``"statevector"`` (dense ``jnp`` simulation) or
      ``"pennylane"`` (``default.qubit`` QNode).
    shots: ``None`` for exact expectations, or a number of measurement shots:
      each qubit's ``<Z>`` is then estimated from a binomial sample of its
      outcome probability, with a key carried in the state.
    key: seed or PRNG key for ``shots``.
    circuit: optional user circuit (e.g. a PennyLane QNode with
      ``interface="jax"``), angles ``(n_qubits,)`` in radians ->
      ``n_qubits`` expectation values; ``m = -circuit(pi * theta)``.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import qsgd_optax
    >>> tx = optax.chain(qsgd_optax.superpose(0.5), optax.adamw(1e-2))
    >>> params = {"w": jnp.array([0.25, -1.5, 2.0])}
    >>> state = tx.init(params)
    >>> grads = {"w": jnp.ones(3)}
    >>> s = qsgd_optax.superpose(0.5)
    >>> s.update(grads, s.init(params), params)[0]["w"]
    Array([1.3535534, 1.5      , 1.       ], dtype=float32)

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """
  options = CircuitOptions.of(locals())
  return perturbation(quantum_weight, options)
