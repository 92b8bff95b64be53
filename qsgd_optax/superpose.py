"""The ``superpose`` gradient transformation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from qsgd_optax import _checks, backends
from qsgd_optax.circuit import Entanglement, PerturbationCircuit
from qsgd_optax.modulation import LeafRule, modulate_leaf

BACKENDS = backends.BACKENDS
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


def _check_circuit_args(
  entanglement: Entanglement, layers: Any, backend: str, circuit: Any
) -> None:
  """A custom ``circuit`` replaces the built-in one and its options."""
  if circuit is None:
    return
  if not callable(circuit):
    raise TypeError(f"circuit must be callable, got {circuit!r}.")
  if backend not in ("auto", "pennylane"):
    raise ValueError(
      f"A custom circuit runs as given; backend must be 'auto' or 'pennylane', got {backend!r}."
    )
  if entanglement is not None or (not _checks.is_traced(layers) and layers != 1):
    raise ValueError(
      "entanglement and layers describe the built-in circuit; with a "
      "custom circuit leave them at None and 1."
    )


def _fixed_circuit(
  n_qubits: Any, entanglement: Entanglement, layers: Any, backend: str, circuit: Any
) -> Optional[PerturbationCircuit]:
  """Checks the arguments and builds the circuit; ``None`` while ``n_qubits``
  or ``layers`` is traced (the state then carries the circuit)."""
  _checks.choice(backend, "backend", BACKENDS)
  _check_circuit_args(entanglement, layers, backend, circuit)
  n = _checks.static_int(n_qubits, "n_qubits")
  n_layers = _checks.static_int(layers, "layers")
  if n is None or n_layers is None:
    return None
  fixed = PerturbationCircuit.build(n, entanglement, n_layers)
  backends.select(fixed, backend, circuit)  # Fail now, not inside jit.
  if circuit is not None:
    _checks.custom_circuit(circuit, n)
  return fixed


def _build(
  quantum_weight: optax.ScalarOrSchedule,
  n_qubits: int,
  entanglement: Entanglement,
  layers: int,
  coverage: str,
  backend: str,
  shots: Optional[int],
  key: Union[int, jax.Array],
  circuit: Optional[Callable[[jax.Array], Any]],
  term_only: bool,
  weight_bound: Optional[float] = None,
) -> optax.GradientTransformationExtraArgs:
  """:func:`superpose` (``g * (1 + lambda m)``) or, with ``term_only``, the
  term ``lambda * m * g`` of the paper's literal rule. With ``weight_bound``,
  a constant weight must satisfy ``|lambda| < weight_bound`` and scheduled
  values are clipped to ``0.99 * weight_bound``."""
  _checks.weight(quantum_weight, weight_bound)
  _checks.choice(coverage, "coverage", COVERAGES)
  if shots is not None and not _checks.is_traced(shots):
    _checks.static_int(shots, "shots")
  fixed = _fixed_circuit(n_qubits, entanglement, layers, backend, circuit)
  key_data = None if _checks.is_traced(key) else _checks.key(key)

  def init_fn(params):
    del params
    if fixed is None:
      raise ValueError(
        "n_qubits and layers fix the circuit's shape and must be concrete "
        "when init runs. Under optax.inject_hyperparams, call init outside "
        "jax.jit, or pass static_args=('n_qubits', 'layers')."
      )
    k = key_data if key_data is not None else _checks.key(key)
    # A fresh array per state: donating one state must not delete another's key.
    return SuperposeState(jnp.zeros([], jnp.int32), jnp.array(k, copy=True), fixed)

  def update_fn(updates, state, params=None, **extra_args):
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
    expval, elementwise = backends.select(circ, backend, circuit)
    rule = LeafRule(expval, elementwise, circ.n_qubits, coverage, shots, term_only)
    weight = quantum_weight(state.count) if callable(quantum_weight) else quantum_weight
    if weight_bound is not None:  # Schedules cannot be checked up front.
      weight = jnp.clip(weight, -0.99 * weight_bound, 0.99 * weight_bound)
    if shots is None:
      new_key, step_key = state.key, None
    else:
      new_key, step_key = jax.random.split(state.key)

    leaves_g, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
    leaves_p = treedef.flatten_up_to(params)  # type: ignore[attr-defined]
    new_leaves = [
      modulate_leaf(
        rule, g, p, weight, None if step_key is None else jax.random.fold_in(step_key, i)
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
    backend: ``"analytic"`` (closed form: ``layers=1`` or no entanglement),
      ``"statevector"`` (dense ``jnp`` simulation), ``"pennylane"``
      (``default.qubit`` QNode), or ``"auto"`` (analytic where possible, else
      statevector).
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
  return _build(
    quantum_weight,
    n_qubits,
    entanglement,
    layers,
    coverage,
    backend,
    shots,
    key,
    circuit,
    term_only=False,
  )
