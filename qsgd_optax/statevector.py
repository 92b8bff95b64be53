"""Statevector backend: a dense ``jax.numpy`` simulator of any gate list.

The circuit is data (a sequence of :class:`qsgd_optax.circuit.Gate`), batched
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

import jax
import jax.numpy as jnp
import numpy as np

from qsgd_optax.circuit import Gate, PerturbationCircuit

MAX_QUBITS = 20
# Amplitudes simulated at once; bigger batches run in chunks (jax.lax.map).
_CHUNK_AMPLITUDES = 1 << 22


def memory_per_circuit(n_qubits: int, itemsize: int = 8) -> int:
  """Bytes of one dense state of ``n_qubits`` (complex64: 8 bytes each)."""
  return (1 << n_qubits) * itemsize


def _gate_matrices(gate: Gate, angles: jax.Array, cdtype) -> jax.Array:
  """The ``(B, 2, 2)`` matrices of a single-qubit gate."""
  batch = angles.shape[0]
  if gate.name == "H":
    h = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
    return jnp.broadcast_to(jnp.asarray(h, cdtype), (batch, 2, 2))
  half = angles[:, gate.param] / 2
  c, s = jnp.cos(half).astype(cdtype), jnp.sin(half).astype(cdtype)
  if gate.name == "RY":
    return jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)
  if gate.name == "RZ":
    zero = jnp.zeros_like(c)
    e = c - 1j * s  # exp(-i phi / 2)
    return jnp.stack(
        [jnp.stack([e, zero], -1), jnp.stack([zero, jnp.conj(e)], -1)], -2
    )
  raise ValueError(f"Unknown gate {gate.name!r}; known: H, RY, RZ, CNOT.")


def _cnot_permutation(pairs, n_qubits: int) -> np.ndarray:
  """Gather indices of a run of CNOTs: ``psi'[b] = psi[idx[b]]``."""
  idx = np.arange(1 << n_qubits)
  for c, t in reversed(pairs):  # (G2 G1 psi)[b] = psi[g1(g2(b))]
    cbit, tbit = 1 << (n_qubits - 1 - c), 1 << (n_qubits - 1 - t)
    idx = np.where(idx & cbit, idx ^ tbit, idx)
  return idx


def _compile(gates: Sequence[Gate], n_qubits: int):
  """Splits a gate list into ("local", per-qubit gate lists) / ("perm", idx)."""
  blocks, local, cnots = [], None, []
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


def _fused(qubit_gates, angles, cdtype):
  m = None
  for gate in qubit_gates:
    g = _gate_matrices(gate, angles, cdtype)
    m = g if m is None else g @ m
  return m


def simulate(
    gates: Sequence[Gate], n_qubits: int, angles: jax.Array
) -> jax.Array:
  """``<Z_i>`` of a gate list from ``|0...0>``, batched over circuits.

  Args:
    gates: the circuit; rotations read ``angles[:, gate.param]`` (radians).
    n_qubits: number of qubits.
    angles: shape ``(batch, n_params)``, float32 or float64.

  Returns:
    Shape ``(batch, n_qubits)``: the expectation of Z on every qubit.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.circuit import Gate
    >>> from qsgd_optax.statevector import simulate
    >>> z = simulate([Gate("H", (0,)), Gate("RY", (0,), 0)], 1,
    ...              jnp.array([[jnp.pi / 2]]))
    >>> z.round(5)
    Array([[-1.]], dtype=float32)
  """
  if n_qubits > MAX_QUBITS:
    raise ValueError(_too_many_qubits(n_qubits))
  cdtype = jnp.complex128 if angles.dtype == jnp.float64 else jnp.complex64
  batch = angles.shape[0]
  dim = 1 << n_qubits
  psi = None
  for kind, block in _compile(gates, n_qubits):
    if kind == "perm":
      if psi is None:  # CNOTs on |0...0> do nothing.
        continue
      psi = psi[:, block]
      continue
    mats = [_fused(qg, angles, cdtype) for qg in block]
    if psi is None:  # Product state: kron of each qubit's M @ |0>.
      psi = jnp.ones((batch, 1), cdtype)
      for m in mats:
        v = jnp.asarray([1, 0], cdtype)[None] if m is None else m[:, :, 0]
        psi = (psi[:, :, None] * v[:, None, :]).reshape(batch, -1)
      continue
    for q, m in enumerate(mats):
      if m is None:
        continue
      psi = psi.reshape(batch, 1 << q, 2, dim >> (q + 1))
      psi = jnp.einsum("bij,bajc->baic", m, psi).reshape(batch, dim)
  if psi is None:
    psi = jnp.zeros((batch, dim), cdtype).at[:, 0].set(1)
  probs = jnp.real(psi * jnp.conj(psi))
  bits = (np.arange(dim)[:, None] >> (n_qubits - 1 - np.arange(n_qubits))) & 1
  return probs @ jnp.asarray(1 - 2 * bits, probs.dtype)


def _too_many_qubits(n_qubits: int) -> str:
  need = memory_per_circuit(n_qubits)
  return (
      f"n_qubits={n_qubits} is more than a dense simulation can hold: one "
      f"state needs 2**{n_qubits} complex64 amplitudes = {need / 2**30:.3g} "
      f"GiB per circuit, for every group of parameters. The dense backends "
      f"take at most {MAX_QUBITS} qubits; the analytic backend has no limit."
  )


def expectations(circuit: PerturbationCircuit, t: jax.Array) -> jax.Array:
  """``<Z_i>`` of ``circuit`` at angles ``pi * t``, ``t`` of shape
  ``(..., n_qubits)``; large batches are simulated in bounded-memory chunks.
  """
  n = circuit.n_qubits
  flat = t.reshape(-1, n)
  gates = circuit.gates()
  run = lambda x: simulate(gates, n, jnp.pi * x)
  chunk = max(1, _CHUNK_AMPLITUDES >> n)
  if flat.shape[0] <= chunk:
    z = run(flat)
  else:
    z = jax.lax.map(lambda x: run(x[None])[0], flat, batch_size=chunk)
  return z.reshape(t.shape).astype(t.dtype)


__all__ = ["MAX_QUBITS", "expectations", "memory_per_circuit", "simulate"]
