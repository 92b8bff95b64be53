"""An independent float64 reference: dense numpy matrices, no JAX, no PennyLane.

Every gate becomes a full 2**n x 2**n matrix built with ``np.kron`` (qubit 0 is
the most significant bit), applied to ``|0...0>``.
"""

import numpy as np

_I = np.eye(2)
_H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
_P0 = np.diag([1.0, 0.0])
_P1 = np.diag([0.0, 1.0])
_X = np.array([[0, 1], [1, 0]])
_Z = np.diag([1.0, -1.0])


def _ry(a):
  c, s = np.cos(a / 2), np.sin(a / 2)
  return np.array([[c, -s], [s, c]])


def _rz(a):
  return np.diag([np.exp(-0.5j * a), np.exp(0.5j * a)])


def _on(n, ops):
  """Kronecker product of per-qubit 2x2 operators (dict qubit -> op)."""
  out = np.eye(1)
  for q in range(n):
    out = np.kron(out, ops.get(q, _I))
  return out


def expectations(n, cnots, layers, theta):
  """<Z_i> of H, then `layers` x (RY(pi t) RZ(pi t) on each qubit, CNOTs)."""
  phi = np.pi * np.asarray(theta, np.float64)
  psi = np.zeros(2**n, complex)
  psi[0] = 1
  psi = _on(n, {q: _H for q in range(n)}) @ psi
  for _ in range(layers):
    for q in range(n):
      psi = _on(n, {q: _ry(phi[q])}) @ psi
      psi = _on(n, {q: _rz(phi[q])}) @ psi
    for c, t in cnots:
      cnot = _on(n, {c: _P0}) + _on(n, {c: _P1, t: _X})
      psi = cnot @ psi
  return np.array([np.real(np.conj(psi) @ _on(n, {q: _Z}) @ psi) for q in range(n)])


def probabilities(n, gates, angles):
  """Basis-state probabilities of a gate list (``H``, ``RY``, ``RZ``, ``CNOT``
  with ``gate.param`` indexing ``angles`` in radians) applied to ``|0...0>``."""
  angles = np.asarray(angles, np.float64)
  psi = np.zeros(2**n, complex)
  psi[0] = 1
  for gate in gates:
    if gate.name == "CNOT":
      c, t = gate.wires
      psi = (_on(n, {c: _P0}) + _on(n, {c: _P1, t: _X})) @ psi
    else:
      op = {"H": lambda _: _H, "RY": _ry, "RZ": _rz}[gate.name]
      angle = None if gate.param is None else angles[gate.param]
      psi = _on(n, {gate.wires[0]: op(angle)}) @ psi
  return np.abs(psi) ** 2


def modulate(grad, theta, weight, n, cnots=(), layers=1, coverage="all"):
  """float64 reference of superpose's output for one leaf (numpy arrays)."""
  g = np.asarray(grad, np.float64)
  t = np.asarray(theta, np.float64)
  m = np.zeros_like(g)
  if coverage == "leading":
    flat_t, flat_m = t.reshape(-1), m.reshape(-1)
    k = min(n, flat_t.size)
    group = np.zeros(n)
    group[:k] = flat_t[:k]
    flat_m[:k] = -expectations(n, cnots, layers, group)[:k]
    return g + weight * flat_m.reshape(g.shape) * g
  rows_t = t.reshape(-1, t.shape[-1] if t.ndim else 1)
  rows_m = m.reshape(rows_t.shape)
  for r in range(rows_t.shape[0]):
    for start in range(0, rows_t.shape[1], n):
      chunk = rows_t[r, start : start + n]
      group = np.zeros(n)
      group[: chunk.size] = chunk
      rows_m[r, start : start + n] = -expectations(n, cnots, layers, group)[: chunk.size]
  return g + weight * rows_m.reshape(g.shape) * g


# (n_qubits, entanglement, layers) covering every built-in pattern.
CONFIGS = [
  (1, None, 1),
  (3, None, 1),
  (4, None, 1),
  (4, None, 3),
  (2, "chain", 1),
  (4, "chain", 1),
  (5, "ring", 1),
  (4, "ring", 1),
  (3, [(2, 0), (0, 1)], 1),
  (4, "chain", 2),
  (3, "ring", 3),
]


def reduced(x):
  """What the circuit sees: reduce_turns in float64 numpy (NaN/inf -> 0)."""
  x = np.asarray(x, np.float64)
  with np.errstate(invalid="ignore"):
    t = x - 2 * np.round(x / 2)
  return np.where(np.isfinite(x), t, 0.0)


def modulate_tree(grads, params, weight, circuit, coverage="all"):
  """:func:`modulate` on every leaf of dicts of gradients and parameters, for
  a ``Gates``."""
  return {
    k: modulate(
      np.asarray(grads[k], np.float64),
      reduced(params[k]),
      weight,
      circuit.n_qubits,
      circuit.cnots,
      circuit.layers,
      coverage,
    )
    for k in grads
  }


def config_id(config):
  n, ent, layers = config
  return f"n{n}-{ent if isinstance(ent, (str, type(None))) else 'custom'}-L{layers}"
