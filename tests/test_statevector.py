import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from qsgd_optax import Gates
from qsgd_optax._src.gates import Gate
from qsgd_optax.backends import statevector


@pytest.mark.parametrize("config", reference.CONFIGS, ids=reference.config_id)
def test_matches_dense_reference(config):
  circuit = Gates.build(*config)
  n = circuit.n_qubits
  theta = np.random.default_rng(n).uniform(-1, 1, (5, n)).astype(np.float32)
  got = jax.jit(lambda t: statevector.expectations(circuit, t))(theta)
  want = [reference.expectations(n, circuit.cnots, circuit.layers, row) for row in theta]
  np.testing.assert_allclose(got, want, atol=2e-6)


def test_float64(x64):
  circuit = Gates.build(3, "chain", 2)
  theta = np.random.default_rng(0).uniform(-1, 1, (4, 3))
  got = statevector.expectations(circuit, jnp.asarray(theta))
  assert got.dtype == jnp.float64
  want = [reference.expectations(3, circuit.cnots, 2, row) for row in theta]
  np.testing.assert_allclose(got, want, atol=1e-12)


def test_any_gate_list():
  """A gate list that is not the built-in pattern: CNOT first, gates repeated."""
  gates = [
    Gate("CNOT", (0, 1)),
    Gate("H", (1,)),
    Gate("RY", (0,), 1),
    Gate("CNOT", (1, 0)),
    Gate("RZ", (1,), 0),
    Gate("RY", (1,), 0),
  ]
  angles = jnp.array([[0.3, -1.2], [2.0, 0.7]])
  got = statevector.simulate(gates, 2, angles)
  for row, a in zip(got, np.asarray(angles, np.float64)):
    # Dense reference of the same list, written out.
    h, ry0, rz1, ry1 = (
      reference._on(2, {1: reference._H}),
      reference._on(2, {0: reference._ry(a[1])}),
      reference._on(2, {1: reference._rz(a[0])}),
      reference._on(2, {1: reference._ry(a[0])}),
    )
    cnot10 = reference._on(2, {1: reference._P0}) + reference._on(
      2, {1: reference._P1, 0: reference._X}
    )
    psi = ry1 @ rz1 @ cnot10 @ ry0 @ h @ np.array([1, 0, 0, 0])
    want = [np.real(np.conj(psi) @ reference._on(2, {q: reference._Z}) @ psi) for q in range(2)]
    np.testing.assert_allclose(row, want, atol=1e-6)


def test_chunked_equals_unchunked(monkeypatch):
  circuit = Gates.build(5, "ring", 2)
  theta = jax.random.uniform(jax.random.PRNGKey(0), (3, 7, 5), minval=-1)
  whole = statevector.expectations(circuit, theta)
  monkeypatch.setattr(statevector, "_CHUNK_AMPLITUDES", 64)  # 2 circuits.
  chunked = jax.jit(lambda t: statevector.expectations(circuit, t))(theta)
  np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_too_many_qubits_names_memory():
  with pytest.raises(ValueError, match=r"n_qubits=30.*8 GiB per circuit"):
    statevector.simulate([], 30, jnp.zeros((1, 30)))


def test_unknown_gate():
  with pytest.raises(ValueError, match="Unknown gate"):
    statevector.simulate([Gate("RX", (0,), 0)], 1, jnp.zeros((1, 1)))
