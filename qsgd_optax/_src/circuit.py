"""The circuit as the optimizer takes it: one frozen, hashable value.

:class:`Circuit` is what users write: the perturbation circuit's qubits,
entanglement and layers, which entries of a leaf it covers, how it is
evaluated and whether its measurement is sampled. Its
:attr:`~Circuit.gates` are the gate-level description the backends read
(:class:`~qsgd_optax.Gates`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal, Optional, ParamSpec, TypeVar, get_args

import jax
import numpy as np

from qsgd_optax import backends
from qsgd_optax._src import checks
from qsgd_optax._src.gates import Entanglement, Gates, entangling_pairs
from qsgd_optax.backends import Backend, BackendName

Coverage = Literal["all", "leading"]
COVERAGES: tuple[Coverage, ...] = get_args(Coverage)


@dataclasses.dataclass(frozen=True)
class Circuit:
  """The perturbation circuit, as :func:`~qsgd_optax.qsgd`,
  :func:`~qsgd_optax.scale_by_qsgd` and :func:`~qsgd_optax.superpose` take it.

  ``n_qubits`` qubits start in ``|0...0>``; a Hadamard acts on every qubit,
  then ``layers`` times ``RY(phi_i) RZ(phi_i)`` on every qubit ``i`` and the
  entangling CNOTs; ``<Z_i>`` is measured on every qubit. Qubit ``i`` of a
  group takes the angle ``phi_i = pi * theta_i`` of the ``i``-th of
  ``n_qubits`` consecutive parameters along a leaf's last axis, and the
  modulation of that parameter is ``m_i = -<Z_i>``. Without entanglement
  ``m = sin(pi * theta)``, the paper's rule. Every field is checked here, so a
  bad circuit fails when it is written; the value is static (hashable, no
  array), so nothing that fixes a shape is ever traced.

  Attributes:
    n_qubits: qubits per circuit, i.e. parameters per group (an int >= 1).
    entanglement: the CNOT pattern of every layer: ``None``, ``"chain"``
      (``i -> i+1``), ``"ring"`` (chain, then ``n-1 -> 0``) or
      ``(control, target)`` pairs.
    layers: number of rotation and entangling layers (an int >= 1).
    coverage: ``"all"`` (every entry, in groups along the last axis) or
      ``"leading"`` (only a leaf's first ``n_qubits`` entries).
    backend: how the circuit is evaluated, one of
      :data:`qsgd_optax.backends.BACKENDS`: ``"auto"`` picks the closed form
      where there is one, else the compiled Pauli form or the statevector;
      ``"pennylane"`` runs a PennyLane QNode. All are exact.
    shots: ``None`` for exact expectations, or the number of measurement shots
      sampled per circuit (with the optimizer's ``key``).
    custom: a user circuit, angles ``(n_qubits,)`` in radians ->
      ``n_qubits`` values of ``<Z>`` (a PennyLane QNode or a function that
      builds one), run through PennyLane in place of the built-in circuit;
      ``None`` for the built-in one.

  Examples:
    >>> import qsgd_optax
    >>> paper = qsgd_optax.Circuit(entanglement="chain", layers=2)
    >>> paper.n_qubits, paper.gates.cnots, paper.evaluation().elementwise
    (4, ((0, 1), (1, 2), (2, 3)), False)
    >>> qsgd_optax.Circuit(n_qubits=3, entanglement=[(0, 2)]).entanglement
    ((0, 2),)
    >>> tx = qsgd_optax.qsgd(1e-3, circuit=qsgd_optax.Circuit(entanglement="ring"))

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """

  n_qubits: int = 4
  entanglement: Entanglement = None
  layers: int = 1
  coverage: Coverage = "all"
  backend: BackendName = "auto"
  shots: Optional[int] = None
  custom: Optional[Callable[[jax.Array], Any]] = None

  def __post_init__(self) -> None:
    set_field = functools.partial(object.__setattr__, self)
    set_field("n_qubits", checks.static_int(self.n_qubits, "n_qubits"))
    set_field("layers", checks.static_int(self.layers, "layers"))
    if self.entanglement is not None and not isinstance(self.entanglement, str):
      set_field("entanglement", entangling_pairs(self.entanglement, self.n_qubits))
    else:
      entangling_pairs(self.entanglement, self.n_qubits)  # Checks the name.
    checks.choice(self.coverage, "coverage", COVERAGES)
    checks.choice(self.backend, "backend", backends.BACKENDS)
    if self.shots is not None:
      set_field("shots", checks.static_int(self.shots, "shots"))
    if self.custom is not None:
      self._check_custom()

  def _check_custom(self) -> None:
    """A custom circuit replaces the built-in one and its options."""
    if not callable(self.custom):
      raise TypeError(f"custom must be callable, got {self.custom!r}.")
    if self.backend not in ("auto", "pennylane"):
      raise ValueError(
        "A custom circuit runs as given; backend must be 'auto' or 'pennylane', "
        f"got {self.backend!r}."
      )
    if self.entanglement is not None or self.layers != 1:
      raise ValueError(
        "entanglement and layers describe the built-in circuit; with a "
        "custom circuit leave them at None and 1."
      )

  @property
  def gates(self) -> Gates:
    """The built-in circuit's gate-level description (what the backends read)."""
    return Gates.build(self.n_qubits, self.entanglement, self.layers)

  def evaluation(self) -> Backend:
    """How this circuit is evaluated (:func:`qsgd_optax.backends.select`).

    Built once per circuit; raises a ``ValueError`` (``ImportError`` for a
    missing PennyLane) when the backend cannot run it, so the optimizers call
    it when they are built, not inside ``jit``.
    """
    return _evaluation(self)


@functools.lru_cache(maxsize=64)
def _evaluation(circuit: Circuit) -> Backend:
  backend = backends.select(circuit.gates, circuit.backend, circuit.custom)
  if circuit.custom is not None:  # Once PennyLane is known to run (select checks it).
    checks.custom_circuit(circuit.custom, circuit.n_qubits)
  return backend


def check_circuit(circuit: Any) -> Circuit:
  """``circuit`` if it is a :class:`Circuit` whose backend can run it, else a clear error."""
  if not isinstance(circuit, Circuit):
    hint = ""
    if callable(circuit):
      hint = " A circuit function goes in qsgd_optax.Circuit(custom=fn)."
    elif isinstance(circuit, (int, np.integer)):
      hint = f" For {circuit} qubits pass qsgd_optax.Circuit(n_qubits={circuit})."
    raise TypeError(f"circuit must be a qsgd_optax.Circuit, got {circuit!r}.{hint}")
  circuit.evaluation()
  return circuit


P = ParamSpec("P")
R = TypeVar("R")
MOVED_KEYWORDS = ("n_qubits", "entanglement", "layers", "coverage", "backend", "shots")


def takes_one_circuit(factory: Callable[P, R]) -> Callable[P, R]:
  """Turns the circuit keywords of 0.4 (``n_qubits=4, entanglement=...``)
  into an error that names the new form, ``circuit=qsgd_optax.Circuit(...)``."""

  @functools.wraps(factory)
  def build(*args: P.args, **kwargs: P.kwargs) -> R:
    moved = {k: kwargs[k] for k in MOVED_KEYWORDS if k in kwargs}
    if moved:
      fields = ", ".join(f"{k}={v!r}" for k, v in moved.items())
      raise TypeError(
        f"{factory.__name__}() takes the circuit as one value: pass "
        f"circuit=qsgd_optax.Circuit({fields}) instead of {', '.join(moved)}=."
      )
    return factory(*args, **kwargs)

  return build


__all__ = ["COVERAGES", "Circuit", "check_circuit", "takes_one_circuit"]
