"""Statevector backend: a dense ``jax.numpy`` simulator of any gate list.

The circuit is data (a sequence of :class:`qsgd_optax._src.gates.Gate`), batched
over a leading axis of independent circuits. Before it runs, the gate list is
compiled once, in Python, into alternating blocks:

* single-qubit gates between two CNOTs are multiplied into one 2x2 matrix per
  qubit (per batch entry, since their angles differ), and the first such block
  acting on ``|0...0>`` builds the product state directly by Kronecker
  products instead of touching the dense vector ``n`` times;
* a run of CNOTs is a permutation of basis states, applied as one gather.

Expectations ``<Z_i>`` are then one matrix product of the probabilities with
the ``(2**n, n)`` table of Z eigenvalues. Qubit 0 is the most significant bit,
as in PennyLane.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from collections.abc import Sequence
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from qsgd_optax._src.gates import Gate, Gates

MAX_QUBITS = 20
# Amplitudes simulated at once; bigger batches run in chunks (jax.lax.map).
_CHUNK_AMPLITUDES = 1 << 22

# A 2x2 matrix as its entries (m00, m01, m10, m11): each a Python number or a
# batch array.
_Matrix = tuple[Any, Any, Any, Any]


def memory_per_circuit(n_qubits: int, itemsize: int = 8) -> int:
  """Bytes of one dense state of ``n_qubits`` (complex64: 8 bytes each).

  Args:
    n_qubits: number of qubits.
    itemsize: bytes per amplitude.

  Returns:
    ``2**n_qubits * itemsize``.

  Examples:
    >>> from qsgd_optax.backends.statevector import memory_per_circuit
    >>> memory_per_circuit(20)
    8388608
  """
  return (1 << n_qubits) * itemsize


def _gate_matrix(gate: Gate, angles: jax.Array, cdtype: DTypeLike) -> _Matrix:
  """A single-qubit gate as its entries ``(m00, m01, m10, m11)``.

  Each entry is a Python number or a batch array; structural zeros
  stay Python ``0`` so that fused products skip them.
  """
  if gate.name == "H":
    r = 1 / np.sqrt(2)
    return (r, r, r, -r)
  half = angles[gate.param] / 2
  if gate.name == "RY":
    c, s = jnp.cos(half).astype(cdtype), jnp.sin(half).astype(cdtype)
    return (c, -s, s, c)
  if gate.name == "RZ":
    e = jax.lax.complex(jnp.cos(half), -jnp.sin(half)).astype(cdtype)
    return (e, 0, 0, jnp.conj(e))  # diag(exp(-i phi/2), exp(i phi/2))
  raise ValueError(f"Unknown gate {gate.name!r}; known: H, RY, RZ, CNOT.")


def _is_zero(x: object) -> bool:
  return isinstance(x, (int, float)) and x == 0


def _mul(a: Any, b: Any) -> Any:
  return 0 if _is_zero(a) or _is_zero(b) else a * b


def _add(a: Any, b: Any) -> Any:
  return b if _is_zero(a) else a if _is_zero(b) else a + b


def _matmul(a: _Matrix, b: _Matrix) -> _Matrix:
  """``a @ b`` for 2x2 matrices given as entry tuples."""
  a00, a01, a10, a11 = a
  b00, b01, b10, b11 = b
  return (
    _add(_mul(a00, b00), _mul(a01, b10)),
    _add(_mul(a00, b01), _mul(a01, b11)),
    _add(_mul(a10, b00), _mul(a11, b10)),
    _add(_mul(a10, b01), _mul(a11, b11)),
  )


def _cnot_permutation(pairs: Sequence[tuple[int, ...]], n_qubits: int) -> np.ndarray:
  """Gather indices of a run of CNOTs: ``psi'[b] = psi[idx[b]]``."""
  idx = np.arange(1 << n_qubits)
  for c, t in reversed(pairs):  # (G2 G1 psi)[b] = psi[g1(g2(b))]
    cbit, tbit = 1 << (n_qubits - 1 - c), 1 << (n_qubits - 1 - t)
    idx = np.where(idx & cbit, idx ^ tbit, idx)
  return idx


def _compile(gates: Sequence[Gate], n_qubits: int) -> list[tuple[str, Any]]:
  """Splits a gate list into ("local", per-qubit gate lists) / ("perm", idx)."""
  blocks: list[tuple[str, Any]] = []
  local: Optional[list[list[Gate]]] = None
  cnots: list[tuple[int, ...]] = []
  for gate in gates:
    if gate.name == "CNOT":
      if local is not None:
        blocks.append(("local", local))
        local = None
      cnots.append(gate.wires)
    else:
      if cnots:
        blocks.append(("perm", _cnot_permutation(cnots, n_qubits)))
        cnots = []
      if local is None:
        local = [[] for _ in range(n_qubits)]
      local[gate.wires[0]].append(gate)
  if local is not None:
    blocks.append(("local", local))
  if cnots:
    blocks.append(("perm", _cnot_permutation(cnots, n_qubits)))
  return blocks


def _fused(qubit_gates: Sequence[Gate], angles: jax.Array, cdtype: DTypeLike) -> Optional[_Matrix]:
  m: Optional[_Matrix] = None
  for gate in qubit_gates:
    g = _gate_matrix(gate, angles, cdtype)
    m = g if m is None else _matmul(g, m)
  return m


def simulate(gates: Sequence[Gate], n_qubits: int, angles: jax.Array) -> jax.Array:
  """``<Z_i>`` of a gate list from ``|0...0>``, batched over circuits.

  The state is held as ``(2**n, *batch)``: the batch is the minor axis, so
  every gate is a few vectorised multiply-adds over contiguous memory.

  Args:
    gates: the circuit; rotations read ``angles[..., gate.param]`` (radians).
    n_qubits: number of qubits.
    angles: shape ``(*batch, n_params)``, float32 or float64.

  Returns:
    Shape ``(*batch, n_qubits)``: the expectation of Z on every qubit.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gate
    >>> from qsgd_optax.backends.statevector import simulate
    >>> z = simulate([Gate("H", (0,)), Gate("RY", (0,), 0)], 1,
    ...              jnp.array([[jnp.pi / 2]]))
    >>> z.round(5)
    Array([[-1.]], dtype=float32)
  """
  probs, final = _probabilities(gates, n_qubits, angles)
  # A final CNOT run permutes basis states just before measurement: fold it
  # into the table of Z eigenvalues instead of moving probabilities.
  order = None if final is None else np.argsort(final)
  signs = jnp.asarray(z_signs(n_qubits, order), probs.dtype)
  # Full precision: the default is TF32 on NVIDIA GPUs, bfloat16 passes on TPUs.
  z = jnp.tensordot(signs, probs, axes=1, precision=jax.lax.Precision.HIGHEST)
  return jnp.moveaxis(z, 0, -1)


def z_signs(n_qubits: int, order: Optional[np.ndarray] = None) -> np.ndarray:
  """``(n_qubits, 2**n_qubits)`` table of Z eigenvalues.

  Row ``i`` is +1 where qubit ``i`` (0 = most significant bit) is 0 in basis
  state ``order[b]``, else -1.

  Args:
    n_qubits: number of qubits.
    order: the basis state of each column (default ``arange(2**n_qubits)``).

  Returns:
    An integer array of shape ``(n_qubits, 2**n_qubits)``.

  Examples:
    >>> from qsgd_optax.backends.statevector import z_signs
    >>> z_signs(2)
    array([[ 1,  1, -1, -1],
           [ 1, -1,  1, -1]])
  """
  order = np.arange(1 << n_qubits) if order is None else order
  bits = (order[None] >> (n_qubits - 1 - np.arange(n_qubits))[:, None]) & 1
  return 1 - 2 * bits


def probabilities(gates: Sequence[Gate], n_qubits: int, angles: jax.Array) -> jax.Array:
  """Basis-state probabilities ``(*batch, 2**n_qubits)`` of a gate list.

  Same arguments as :func:`simulate`; qubit 0 is the most significant bit.

  Args:
    gates: the circuit; rotations read ``angles[..., gate.param]`` (radians).
    n_qubits: number of qubits.
    angles: shape ``(*batch, n_params)``, float32 or float64.

  Returns:
    Shape ``(*batch, 2**n_qubits)``: the probability of every basis state.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gate
    >>> from qsgd_optax.backends.statevector import probabilities
    >>> bell = [Gate("RY", (0,), 0), Gate("CNOT", (0, 1))]
    >>> probabilities(bell, 2, jnp.array([jnp.pi / 2])).round(4)
    Array([0.5, 0. , 0. , 0.5], dtype=float32)
  """
  probs, final = _probabilities(gates, n_qubits, angles)
  return jnp.moveaxis(probs if final is None else probs[final], 0, -1)


def _probabilities(
  gates: Sequence[Gate], n_qubits: int, angles: jax.Array
) -> tuple[jax.Array, Optional[np.ndarray]]:
  """Probabilities ``(2**n, *batch)`` before a final CNOT run, and that run's
  gather indices (``None`` if the circuit does not end with CNOTs)."""
  check_qubits(n_qubits)
  cdtype = jnp.complex128 if angles.dtype == jnp.float64 else jnp.complex64
  batch = angles.shape[:-1]
  angles = jnp.moveaxis(angles, -1, 0)
  dim = 1 << n_qubits
  blocks = _compile(gates, n_qubits)
  while blocks and blocks[0][0] == "perm":  # CNOTs on |0...0> do nothing.
    blocks.pop(0)
  final = blocks.pop()[1] if blocks and blocks[-1][0] == "perm" else None
  if not blocks:
    probs = jnp.zeros((dim, *batch), angles.dtype).at[0].set(1)
  elif len(blocks) == 1:
    # One product state straight to measurement: its probabilities are the
    # Kronecker product of each qubit's (|m00|^2, |m10|^2); no amplitudes.
    probs = jnp.ones((1, *batch), angles.dtype)
    for m in reversed([_fused(qg, angles, cdtype) for qg in blocks[0][1]]):
      top, bottom = (1.0, 0.0) if m is None else (_abs2(m[0]), _abs2(m[2]))
      probs = jnp.concatenate([top * probs, bottom * probs], axis=0)
  else:
    psi = _dense_state(blocks, angles, n_qubits, batch, cdtype)
    probs = _abs2(psi)
  return probs, final


def _scale(c: Any, psi: jax.Array) -> jax.Array:
  return jnp.zeros_like(psi) if _is_zero(c) else c * psi


def _abs2(x: ArrayLike) -> jax.Array:
  return jnp.real(x) ** 2 + jnp.imag(x) ** 2


def _dense_state(
  blocks: Sequence[tuple[str, Any]],
  angles: jax.Array,
  n_qubits: int,
  batch: tuple[int, ...],
  cdtype: DTypeLike,
) -> jax.Array:
  """Amplitudes ``(2**n, *batch)`` after the blocks, from ``|0...0>``."""
  dim = 1 << n_qubits
  psi: Any = None  # The first block is local: CNOTs on |0...0> were dropped.
  for kind, block in blocks:
    if kind == "perm":
      psi = psi[block]
      continue
    mats = [_fused(qg, angles, cdtype) for qg in block]
    if psi is None:  # Product state: kron of each qubit's M |0> = (m00, m10).
      psi = jnp.ones((1, *batch), cdtype)
      for m in reversed(mats):
        top, bottom = (1, 0) if m is None else (m[0], m[2])
        psi = jnp.concatenate([_scale(top, psi), _scale(bottom, psi)], 0)
      continue
    for q, m in enumerate(mats):
      if m is None:
        continue
      psi = psi.reshape((1 << q, 2, dim >> q + 1, *batch))
      a, b = psi[:, 0], psi[:, 1]
      psi = jnp.stack(
        [_add(_mul(m[0], a), _mul(m[1], b)), _add(_mul(m[2], a), _mul(m[3], b))], axis=1
      )
      psi = psi.reshape((dim, *batch))
  return psi


def check_qubits(n_qubits: int) -> None:
  """Raises a ``ValueError`` saying the memory needed if ``n_qubits`` is
  more than a dense simulation takes (:data:`MAX_QUBITS`)."""
  if n_qubits <= MAX_QUBITS:
    return
  need = memory_per_circuit(n_qubits)
  raise ValueError(
    f"n_qubits={n_qubits} is more than a dense simulation can hold: one "
    f"state needs 2**{n_qubits} complex64 amplitudes = {need / 2**30:.3g} "
    f"GiB per circuit, for every group of parameters. The dense backends "
    f"take at most {MAX_QUBITS} qubits; the analytic backend has no limit."
  )


def expectations(circuit: Gates, t: jax.Array) -> jax.Array:
  """``<Z_i>`` of ``circuit`` at angles ``pi * t``, by dense simulation.

  Large batches are simulated in bounded-memory chunks.

  Args:
    circuit: the circuit, of at most :data:`MAX_QUBITS` qubits.
    t: angles in turns of shape ``(..., n_qubits)``.

  Returns:
    An array like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.statevector import expectations
    >>> c = Gates.build(2, "chain", layers=2)
    >>> expectations(c, jnp.array([0.25, 0.5])).round(4)
    Array([-0.5   ,  0.3536], dtype=float32)
  """
  n = circuit.n_qubits
  gates = circuit.sequence()
  run = lambda x: simulate(gates, n, jnp.pi * x)
  chunk = max(1, _CHUNK_AMPLITUDES >> n)
  batch = t.size // n
  if batch <= chunk:  # No reshape: sharded leading axes stay sharded.
    z = run(t)
  else:  # Whole chunks through lax.map, keeping the batch-minor layout.
    n_chunks = -(-batch // chunk)
    flat = jnp.pad(t.reshape(-1, n), ((0, n_chunks * chunk - batch), (0, 0)))
    z = jax.lax.map(run, flat.reshape(n_chunks, chunk, n))
    z = z.reshape(-1, n)[:batch]
  return z.reshape(t.shape).astype(t.dtype)


__all__ = [
  "MAX_QUBITS",
  "expectations",
  "memory_per_circuit",
  "probabilities",
  "simulate",
  "z_signs",
]
