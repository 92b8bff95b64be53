"""Data-parallel + FSDP training with ``qsgd`` over a device mesh.

The batch is split over the mesh's ``data`` axis; every parameter matrix is
split along its first axis over ``fsdp`` (vectors are replicated), and the
optimizer state is sharded like the parameters, since ``init`` runs on the
sharded parameters. XLA inserts the collectives. Sharding a matrix on its
first axis never splits a circuit (they run along the last axis), so the
circuits need no communication on any platform. Sharding the last
axis instead keeps circuits whole where each device's slice of it is a
multiple of ``n_qubits``; the guide's "Sharded training" says what each
platform then compiles.

On a CPU-only machine this simulates 8 devices; on a TPU or GPU pod it uses
the real ones, unchanged; on one accelerator the mesh is 1 x 1 (no sharding,
the same program).

Run: python examples/sharded_finetune.py
"""

import os

if "XLA_FLAGS" not in os.environ:  # Simulate 8 devices when only a CPU is here.
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import qsgd_optax


def main():
  devices = np.array(jax.devices())
  data = 2 if devices.size % 2 == 0 else 1  # A mesh from the devices present.
  mesh = Mesh(devices.reshape(data, -1), ("data", "fsdp"))
  fsdp = mesh.shape["fsdp"]
  sizes = [32, 256, 256, 1]
  key = jax.random.PRNGKey(0)
  params = []
  for a, b in itertools.pairwise(sizes):
    key, sub = jax.random.split(key)
    params.append({"w": jax.random.normal(sub, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)})

  def spec(x):
    return P("fsdp", None) if x.ndim == 2 and x.shape[0] % fsdp == 0 else P()

  params = jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, spec(x))), params)
  tx = qsgd_optax.qsgd(3e-3, quantum_weight=0.5, circuit=qsgd_optax.Circuit(entanglement="chain"))
  state = tx.init(params)  # Sharded like params.

  def forward(params, x):
    for layer in params[:-1]:
      x = jax.nn.gelu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]

  @jax.jit
  def step(params, state, x, y):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean((forward(p, x) - y) ** 2))(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  w_true = jax.random.normal(jax.random.PRNGKey(1), (32, 1))
  batch_sharding = NamedSharding(mesh, P("data", None))
  for i in range(301):
    x = jax.random.normal(jax.random.PRNGKey(100 + i), (256, 32))
    y = jnp.tanh(x @ w_true / np.sqrt(32))
    x, y = jax.device_put(x, batch_sharding), jax.device_put(y, batch_sharding)
    params, state, loss = step(params, state, x, y)
    if i % 100 == 0:
      print(f"step {i:3d}  loss {float(loss):.4f}")
  mu = optax.tree.get(state, "mu")[0]["w"]
  print(
    f"{len(devices)} devices, mesh {dict(mesh.shape)}; first weight sharded "
    f"{params[0]['w'].sharding.spec}, its Adam first moment {mu.sharding.spec}"
  )


if __name__ == "__main__":
  main()
