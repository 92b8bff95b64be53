"""Ways to evaluate the perturbation circuit's ``<Z_i>``, and the choice
between them.

* :mod:`~qsgd_optax.backends.analytic`: closed forms (elementwise ``jnp``);
* :mod:`~qsgd_optax.backends.statevector`: a dense ``jnp`` simulator of any
  gate list;
* :mod:`~qsgd_optax.backends.pennylane`: a PennyLane ``default.qubit`` QNode
  (imports PennyLane only when used), also the way to run a user's circuit.

Every backend maps angles in turns ``t`` (``phi = pi * t``) of shape
``(..., n_qubits)`` to ``<Z_i>`` of the same shape.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Optional

import jax

from qsgd_optax.backends import analytic, pennylane, statevector
from qsgd_optax.circuit import PerturbationCircuit

BACKENDS = ("auto", "analytic", "statevector", "pennylane")

Expectations = Callable[[jax.Array], jax.Array]


def select(
  circuit: PerturbationCircuit,
  backend: str = "auto",
  custom: Optional[Callable[[jax.Array], object]] = None,
) -> tuple[Expectations, bool]:
  """The function ``t -> <Z>`` for ``circuit`` and whether it is elementwise.

  An elementwise function takes angles of any shape (no grouping needed).
  Raises a ``ValueError`` (or ``ImportError`` for a missing PennyLane) when
  the backend cannot run the circuit, so it can be called at build time.

  Args:
    circuit: the circuit.
    backend: one of :data:`BACKENDS`; ``"auto"`` is the analytic backend
      where it has a closed form, else the statevector simulator.
    custom: a user circuit, angles ``(n_qubits,)`` in radians to ``<Z_i>``.
  """
  n = circuit.n_qubits
  if custom is not None:
    return (lambda t: pennylane.batched(custom, n, t)), False
  if backend == "auto":
    backend = "analytic" if circuit.has_closed_form else "statevector"
  if backend == "analytic":
    if not circuit.has_closed_form:
      raise ValueError(
        "backend='analytic' has a closed form only for layers=1 or "
        f"entanglement=None; got layers={circuit.layers} with CNOTs "
        f"{circuit.cnots}. Use backend='statevector' (or 'auto')."
      )
    return (lambda t: analytic.expectations(circuit, t)), circuit.is_product
  statevector.check_qubits(n)
  if backend == "statevector":
    return (lambda t: statevector.expectations(circuit, t)), False
  if importlib.util.find_spec("pennylane") is None:
    raise ImportError("backend='pennylane' needs PennyLane: pip install 'qsgd-optax[pennylane]'.")
  return (lambda t: pennylane.expectations(circuit, t)), False


__all__ = ["BACKENDS", "Expectations", "analytic", "pennylane", "select", "statevector"]
