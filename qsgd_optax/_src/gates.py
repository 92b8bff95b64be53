"""The perturbation circuit's gates, as data.

The circuit of Superpositional Gradient Descent acts on ``n_qubits`` qubits
starting from ``|0...0>``: a Hadamard on every qubit, then ``layers`` times a
rotation layer ``RY(phi_i) RZ(phi_i)`` on every qubit ``i`` followed by an
entangling pattern of CNOTs. It is measured as ``<Z_i>`` on every qubit.
Angles are ``phi_i = pi * theta_i`` for the parameter values ``theta``.

Every backend reads the same :class:`Gates`: the statevector and
PennyLane backends walk its :meth:`~Gates.sequence`, the analytic
backend uses the closed form derived from its :meth:`parity_sets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal, Optional, Union

import jax
import numpy as np

Entanglement = Union[None, Literal["chain", "ring"], Sequence[Sequence[int]]]


@dataclasses.dataclass(frozen=True)
class Gate:
  """One gate of a circuit's gate list.

  Backends walk a tuple of these in the order the gates act.

  Attributes:
    name: the gate, one of ``"H"``, ``"RY"``, ``"RZ"`` and ``"CNOT"``.
    wires: the qubits it acts on: one for ``H`` and the rotations,
      ``(control, target)`` for ``CNOT``.
    param: for ``RY`` and ``RZ``, the index of the angle it takes in the
      circuit's angle vector; ``None`` for ``H`` and ``CNOT``.

  Examples:
    >>> from qsgd_optax import Gate, Gates
    >>> Gate("RY", (0,), param=0)
    Gate(name='RY', wires=(0,), param=0)
    >>> Gates.build(2, "chain").sequence()[-1]
    Gate(name='CNOT', wires=(0, 1), param=None)
  """

  name: str
  wires: tuple[int, ...]
  param: Optional[int] = None


def entangling_pairs(entanglement: Entanglement, n_qubits: int) -> tuple[tuple[int, int], ...]:
  """CNOT ``(control, target)`` pairs of an entangling pattern.

  Args:
    entanglement: ``None`` (no CNOT), ``"chain"`` (CNOT i->i+1), ``"ring"``
      (chain, then n-1->0), or an explicit sequence of ``(control, target)``.
    n_qubits: number of qubits.

  Returns:
    A tuple of ``(control, target)`` pairs, in circuit order.

  Examples:
    >>> from qsgd_optax import entangling_pairs
    >>> entangling_pairs("ring", 3)
    ((0, 1), (1, 2), (2, 0))
    >>> entangling_pairs(None, 3)
    ()
  """
  if entanglement is None:
    return ()
  if isinstance(entanglement, str):
    if entanglement == "chain":
      return tuple((i, i + 1) for i in range(n_qubits - 1))
    if entanglement == "ring":
      chain = tuple((i, i + 1) for i in range(n_qubits - 1))
      return chain + (((n_qubits - 1, 0),) if n_qubits > 1 else ())
    raise ValueError(
      f"entanglement must be None, 'chain', 'ring' or a sequence of "
      f"(control, target) pairs, got {entanglement!r}."
    )
  try:
    pairs = tuple((int(c), int(t)) for c, t in entanglement)
  except (TypeError, ValueError) as e:
    raise TypeError(
      "entanglement must be None, 'chain', 'ring' or a sequence of "
      f"(control, target) integer pairs, got {entanglement!r}."
    ) from e
  for c, t in pairs:
    if not (0 <= c < n_qubits and 0 <= t < n_qubits) or c == t:
      raise ValueError(
        f"entanglement pair ({c}, {t}) must name two different qubits in [0, {n_qubits - 1}]."
      )
  return pairs


def layered_gates(
  n_qubits: int,
  cnots: Sequence[tuple[int, int]],
  layers: int,
  ry_param: Callable[[int, int], int],
  rz_param: Callable[[int, int], int],
) -> tuple[Gate, ...]:
  """The layered circuit's gate list, in the order the gates act.

  A Hadamard on every qubit, then ``layers`` times: ``RY`` then ``RZ`` on
  every qubit, followed by the CNOTs ``cnots``. The rotations on qubit ``i``
  in layer ``l`` take the angles ``ry_param(l, i)`` and ``rz_param(l, i)``.
  :class:`Gates` and the attention's
  :class:`~qsgd_optax._src.attention.ScoreCircuit` both build their gates here.

  Examples:
    >>> from qsgd_optax._src.gates import layered_gates
    >>> gates = layered_gates(1, (), 2, lambda l, i: l, lambda l, i: 2 + l)
    >>> [(g.name, g.param) for g in gates]
    [('H', None), ('RY', 0), ('RZ', 2), ('RY', 1), ('RZ', 3)]
  """
  gates = [Gate("H", (i,)) for i in range(n_qubits)]
  for layer in range(layers):
    for i in range(n_qubits):
      gates.append(Gate("RY", (i,), ry_param(layer, i)))
      gates.append(Gate("RZ", (i,), rz_param(layer, i)))
    gates.extend(Gate("CNOT", tuple(pair)) for pair in cnots)
  return tuple(gates)


@dataclasses.dataclass(frozen=True)
class Gates:
  """A :class:`~qsgd_optax.Circuit`'s gates: ``n_qubits``, its CNOT pairs and ``layers``.

  What the backends read (:attr:`qsgd_optax.Circuit.gates`): the gate-level
  description of the built-in circuit, without the options of how it is
  applied (coverage, backend, shots).

  Registered as a static pytree node (no leaves), so it can ride in an
  optimizer state through ``jax.jit`` as part of the tree structure. Build
  one from an entangling pattern with :meth:`build`.

  Attributes:
    n_qubits: number of qubits (and of angles: qubit ``i`` takes angle ``i``
      in every layer).
    cnots: the ``(control, target)`` pairs of every layer's CNOTs, in circuit
      order (see :func:`entangling_pairs`); ``()`` for no entanglement.
    layers: number of rotation-and-CNOT layers after the Hadamards.

  Examples:
    >>> from qsgd_optax import Gates
    >>> c = Gates.build(3, "chain")
    >>> c
    Gates(n_qubits=3, cnots=((0, 1), (1, 2)), layers=1)
    >>> c.parity_sets()
    ((0,), (0, 1), (0, 1, 2))

  References:
    Pamuk et al., `Superpositional Gradient Descent
    <https://arxiv.org/abs/2511.01918>`_, 2025.
  """

  n_qubits: int
  cnots: tuple[tuple[int, int], ...] = ()
  layers: int = 1

  @classmethod
  def build(cls, n_qubits: int, entanglement: Entanglement = None, layers: int = 1) -> Gates:
    return cls(n_qubits, entangling_pairs(entanglement, n_qubits), layers)

  def sequence(self) -> tuple[Gate, ...]:
    """The gates, in the order they act: every layer's ``RY`` and
    ``RZ`` on qubit ``i`` both take angle ``i``."""
    qubit = lambda layer, i: i
    return layered_gates(self.n_qubits, self.cnots, self.layers, qubit, qubit)

  @property
  def is_product(self) -> bool:
    """Whether the circuit has no CNOT (every qubit then evolves alone, for any layers)."""
    return not self.cnots

  @property
  def has_closed_form(self) -> bool:
    """Whether the analytic backend can evaluate this circuit exactly."""
    return self.is_product or self.layers == 1

  def parity_sets(self) -> tuple[tuple[int, ...], ...]:
    """For each measured qubit ``i``, the qubits ``S_i`` whose Z it picks up.

    A CNOT(c, t) conjugates Pauli-Z strings to Pauli-Z strings:
    ``CNOT Z_t CNOT = Z_c Z_t`` and ``CNOT Z_c CNOT = Z_c``. Walking the CNOTs
    backwards (Heisenberg picture) maps the measured ``Z_i`` to a product
    ``prod_{j in S_i} Z_j`` over a parity set ``S_i`` (a row of a GF(2)
    matrix). Before the CNOTs, one rotation layer leaves a product state with
    ``<Z_j> = -sin(phi_j)`` (``H`` takes ``|0>`` to the +X axis, ``RY(phi)``
    turns it to ``(cos phi, 0, -sin phi)``, ``RZ`` leaves Z alone), so

        <Z_i> = prod_{j in S_i} (-sin(phi_j)).

    Without CNOTs ``S_i = {i}`` and the modulation ``-<Z_i>`` is exactly the
    paper's ``sin(pi * theta_i)``.
    """
    n = self.n_qubits
    rows = np.eye(n, dtype=bool)  # rows[i]: the Z-string Z_i has become.
    for c, t in reversed(self.cnots):
      rows[:, c] ^= rows[:, t]
    return tuple(tuple(int(j) for j in np.flatnonzero(r)) for r in rows)


jax.tree_util.register_static(Gates)
