"""Bring your own PennyLane circuit: any QNode mapping angles to expectations.

The modulation is ``-circuit(pi * theta)`` per group of ``n_qubits``
parameters. Here a ``StronglyEntanglingLayers`` template with fixed weights.

Run: python examples/pennylane_circuit.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

import qsgd_optax

N_QUBITS = 3
WEIGHTS = np.random.default_rng(0).uniform(0, np.pi, (2, N_QUBITS, 3))


@qml.qnode(qml.device("default.qubit", wires=N_QUBITS), interface="jax")
def circuit(angles):
  qml.AngleEmbedding(angles, wires=range(N_QUBITS), rotation="Y")
  qml.StronglyEntanglingLayers(WEIGHTS, wires=range(N_QUBITS))
  return [qml.expval(qml.PauliZ(i)) for i in range(N_QUBITS)]


def main():
  print(qml.draw(circuit)(np.zeros(N_QUBITS)))
  custom = qsgd_optax.Circuit(n_qubits=N_QUBITS, custom=circuit)
  tx = optax.chain(qsgd_optax.superpose(0.5, custom), optax.adamw(1e-2))
  target = jnp.array([1.0, -1.0, 0.5, 2.0, -0.5])
  loss = lambda p: jnp.sum((p - target) ** 2)
  params = jnp.zeros(5)
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  for i in range(1001):
    params, state = step(params, state)
    if i % 250 == 0:
      print(f"step {i:4d}  loss {float(loss(params)):.5f}")


if __name__ == "__main__":
  main()
