"""Ways to evaluate the perturbation circuit's ``<Z_i>``, and the choice
between them.

* :mod:`~qsgd_optax.backends.analytic`: closed forms (elementwise ``jnp``);
* :mod:`~qsgd_optax.backends.pauli`: the exact closed form of any circuit,
  compiled once per circuit (Heisenberg picture, Pauli strings);
* :mod:`~qsgd_optax.backends.statevector`: a dense ``jnp`` simulator of any
  gate list;
* :mod:`~qsgd_optax.backends.pennylane`: a PennyLane ``default.qubit`` QNode
  (imports PennyLane only when used), also the way to run a user's circuit.

Every backend maps angles in turns ``t`` (``phi = pi * t``) of shape
``(..., n_qubits)`` to ``<Z_i>`` of the same shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple, Optional, get_args

import jax

from qsgd_optax._src.gates import Gates
from qsgd_optax.backends import analytic, pauli, pennylane, statevector

BackendName = Literal["auto", "analytic", "pauli", "statevector", "pennylane"]
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)

# backend="auto" takes the compiled Pauli form of a circuit without an analytic
# closed form while it has at most this many terms, else the statevector
# simulator. Measured (benchmarks/backends.py --threshold, CPU): up to 2048
# terms the form ran 2-150x faster than statevector and compiled in under ~2 s
# per leaf shape; past it the gain fell to 1.2-4x (at 2.6e3-1.2e4 terms) while
# compiling took 3-22 s per leaf shape.
PAULI_MAX_TERMS = 2048


@functools.lru_cache(maxsize=128)
def auto_backend(circuit: Gates) -> BackendName:
  """The backend ``"auto"`` picks for ``circuit``: ``"analytic"`` where it has
  a closed form, else ``"pauli"`` up to :data:`PAULI_MAX_TERMS` terms, else
  ``"statevector"``.

  Examples:
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import auto_backend
    >>> auto_backend(Gates.build(4, "chain", layers=2))
    'pauli'
  """
  if circuit.has_closed_form:
    return "analytic"
  count = pauli.term_count(circuit, max_terms=4 * PAULI_MAX_TERMS)
  return "pauli" if count is not None and count <= PAULI_MAX_TERMS else "statevector"


Expectations = Callable[[jax.Array], jax.Array]
Columns = Callable[[Sequence[jax.Array], Optional[Sequence[int]]], list[jax.Array]]


class Backend(NamedTuple):
  """A circuit's evaluation, as :func:`select` returns it.

  Attributes:
    expectations: angles ``(..., n_qubits)`` in turns -> ``<Z_i>``, same shape.
    elementwise: whether ``expectations`` takes any shape (no grouping needed).
    columns: the same on one array per qubit (any one shape), returning one
      array per qubit, or only those of the qubits asked for (the second
      argument, ``None`` for all), where the backend is a closed form (else
      ``None``).

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import select
    >>> b = select(Gates.build(2), "analytic")
    >>> b.elementwise, b.columns is None
    (True, True)
    >>> b.expectations(jnp.full((3, 2), 0.25)).round(4)
    Array([[-0.7071, -0.7071],
           [-0.7071, -0.7071],
           [-0.7071, -0.7071]], dtype=float32)
  """

  expectations: Expectations
  elementwise: bool = False
  columns: Optional[Columns] = None


def _analytic(circuit: Gates) -> Backend:
  if not circuit.has_closed_form:
    raise ValueError(
      "backend='analytic' has a closed form only for layers=1 or "
      f"entanglement=None; got layers={circuit.layers} with CNOTs "
      f"{circuit.cnots}. Use backend='statevector' (or 'auto')."
    )
  columns = lambda c, q: analytic.expectation_columns(circuit, c, q)
  return Backend(
    lambda t: analytic.expectations(circuit, t),
    circuit.is_product,
    None if circuit.is_product else columns,
  )


def _pauli(circuit: Gates) -> Backend:
  try:  # Fails here, not inside jit.
    compiled = pauli.compile_circuit(circuit)
  except pauli.TermLimitError as e:
    raise pauli.TermLimitError(
      f"backend='pauli': the closed form of {circuit} needs {e} (pauli.MAX_TERMS); "
      "use backend='statevector' (or 'auto')."
    ) from e
  return Backend(
    lambda t: pauli.expectations(circuit, t),
    columns=lambda c, q: pauli.evaluate_columns(compiled, c, q),
  )


def _statevector(circuit: Gates) -> Backend:
  statevector.check_qubits(circuit.n_qubits)
  return Backend(lambda t: statevector.expectations(circuit, t))


def _pennylane(circuit: Gates) -> Backend:
  statevector.check_qubits(circuit.n_qubits)
  pennylane.check_installed()
  return Backend(lambda t: pennylane.expectations(circuit, t))


_BUILDERS: dict[str, Callable[[Gates], Backend]] = {
  "analytic": _analytic,
  "pauli": _pauli,
  "statevector": _statevector,
  "pennylane": _pennylane,
}


def select(
  circuit: Gates,
  backend: BackendName = "auto",
  custom: Optional[Callable[[jax.Array], object]] = None,
) -> Backend:
  """How ``circuit`` is evaluated by ``backend``.

  Raises a ``ValueError`` (or ``ImportError`` for a missing or incompatible
  PennyLane) when the backend cannot run the circuit, so it can be called at
  build time.

  Args:
    circuit: the circuit.
    backend: one of :data:`BACKENDS`; ``"auto"`` is :func:`auto_backend`.
    custom: a user circuit, angles ``(n_qubits,)`` in radians to ``<Z_i>``;
      it replaces ``circuit`` and runs through PennyLane's JAX interface.

  Returns:
    A :class:`Backend`.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import select
    >>> select(Gates.build(2), "analytic").expectations(jnp.array([0.5, 0.0]))
    Array([-1., -0.], dtype=float32)
  """
  if custom is not None:
    pennylane.check_installed()
    return Backend(lambda t: pennylane.batched(custom, circuit.n_qubits, t))
  if backend == "auto":
    backend = auto_backend(circuit)
  return _BUILDERS[backend](circuit)


__all__ = [
  "BACKENDS",
  "PAULI_MAX_TERMS",
  "Backend",
  "Columns",
  "Expectations",
  "analytic",
  "auto_backend",
  "pauli",
  "pennylane",
  "select",
  "statevector",
]
