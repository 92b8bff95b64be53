import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from optional import pennylane_or_skip

from qsgd_optax import Gates
from qsgd_optax.backends import pennylane as pennylane_backend

pennylane_or_skip(module=True)
import pennylane as qml  # noqa: E402


@pytest.mark.parametrize("config", reference.CONFIGS, ids=reference.config_id)
def test_matches_dense_reference(config):
  circuit = Gates.build(*config)
  n = circuit.n_qubits
  theta = np.random.default_rng(n + 10).uniform(-1, 1, (4, n)).astype(np.float32)
  got = jax.jit(lambda t: pennylane_backend.expectations(circuit, t))(theta)
  want = [reference.expectations(n, circuit.cnots, circuit.layers, row) for row in theta]
  np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("as_array", [False, True])
def test_user_qnode(as_array):
  dev = qml.device("default.qubit", wires=3)

  @qml.qnode(dev, interface="jax")
  def circuit(angles):
    qml.AngleEmbedding(angles, wires=range(3), rotation="Y")
    return [qml.expval(qml.PauliZ(i)) for i in range(3)]

  fn = (lambda a: jnp.stack(circuit(a))) if as_array else circuit
  t = jnp.array([[0.5, 0.0, -0.25], [1.0, 0.5, 0.25]])
  got = jax.jit(lambda t: pennylane_backend.batched(fn, 3, t))(t)
  np.testing.assert_allclose(got, np.cos(np.pi * t), atol=1e-6)


def test_import_does_not_load_pennylane():
  code = (
    "import sys, qsgd_optax, jax.numpy as jnp; "
    "tx = qsgd_optax.superpose(circuit=qsgd_optax.Circuit(backend='statevector')); "
    "p = {'w': jnp.ones(5)}; tx.update(p, tx.init(p), p); "
    "assert 'pennylane' not in sys.modules"
  )
  subprocess.run([sys.executable, "-c", code], check=True)
