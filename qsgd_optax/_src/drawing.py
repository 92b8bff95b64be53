"""Drawing the perturbation circuit with PennyLane's drawer."""

from typing import Optional

import numpy as np

from qsgd_optax._src.gates import Entanglement, Gates


def draw(
  n_qubits: int = 4,
  entanglement: Entanglement = None,
  layers: int = 1,
  theta: Optional[np.ndarray] = None,
  decimals: Optional[int] = 2,
) -> str:
  """Draws the circuit that :func:`superpose` simulates, as text.

  Args:
    n_qubits: qubits per circuit.
    entanglement: ``None``, ``"chain"``, ``"ring"`` or ``(control, target)``
      pairs, as in :func:`superpose`.
    layers: rotation+entangling layers.
    theta: parameter values of one group (angles are ``pi * theta``); zeros
      if omitted.
    decimals: digits of the angles shown; ``None`` hides them.

  Returns:
    PennyLane's text drawing (``qml.draw``).

  Examples:
    >>> import qsgd_optax
    >>> print(qsgd_optax.draw(2, "chain", decimals=None))
    0: ──H──RY──RZ─╭●─┤  <Z>
    1: ──H──RY──RZ─╰X─┤  <Z>

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """
  from qsgd_optax.backends import pennylane as pennylane_backend

  pennylane_backend.check_installed()
  import pennylane as qml  # pylint: disable=import-outside-toplevel

  circuit = Gates.build(n_qubits, entanglement, layers)
  if theta is None:
    theta = np.zeros(n_qubits)
  angles = np.pi * np.asarray(theta, dtype=float)
  return qml.draw(pennylane_backend.qnode(circuit), decimals=decimals)(angles)
