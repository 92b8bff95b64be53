"""``qsgd`` with the paper's circuit under JAX's explicit sharding (``jax.set_mesh``).

The mesh has two explicit axes: ``data`` splits the batch, ``fsdp`` splits
every parameter (FSDP). Matrices are split along their last axis, the axis
``qsgd`` groups along: with 256 columns over 4 devices each device holds 64,
whole groups of 4, so the circuit is evaluated per device with no
communication. The forward pass gathers each matrix before using it
(``jax.sharding.reshard``), as FSDP does, and its gradient comes back sharded
like the parameter. ``tx.init`` on the sharded parameters gives an Adam state
sharded like them, and the step keeps both. The output layer has 4 columns,
one per device: its groups straddle devices, so ``qsgd`` gathers that leaf's
last axis each step (an all-gather of 256 x 4 values) and slices the result
back, with the unsharded values.

On a CPU-only machine this simulates 8 devices; on a TPU or GPU slice it uses
the real ones, unchanged.

Run: python examples/explicit_sharding.py
"""

import os

if "XLA_FLAGS" not in os.environ:  # Simulate 8 devices when only a CPU is here.
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding, reshard
from jax.sharding import PartitionSpec as P

import qsgd_optax


def main():
  data = 2 if jax.device_count() % 2 == 0 else 1
  mesh = jax.make_mesh(
    (data, jax.device_count() // data),
    ("data", "fsdp"),
    axis_types=(AxisType.Explicit, AxisType.Explicit),
  )
  with jax.set_mesh(mesh):  # Every array made inside has a sharding in its type.
    train(mesh)


def train(mesh):
  sizes = [32, 256, 256, 4]
  keys = jax.random.split(jax.random.PRNGKey(0), len(sizes))
  params = [
    {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
    for k, (a, b) in zip(keys, itertools.pairwise(sizes))
  ]
  last_axis = lambda x: NamedSharding(mesh, P(*(None,) * (x.ndim - 1), "fsdp"))
  params = jax.tree.map(lambda x: jax.device_put(x, last_axis(x)), params)

  paper = qsgd_optax.Circuit(entanglement="chain", layers=2)
  tx = qsgd_optax.qsgd(3e-3, quantum_weight=0.5, circuit=paper)
  state = tx.init(params)  # Sharded like params.

  def forward(params, x):
    for i, layer in enumerate(params):
      w, b = reshard(layer["w"], P()), reshard(layer["b"], P())  # FSDP: gather, then use.
      x = x @ w + b
      x = jax.nn.gelu(x) if i < len(params) - 1 else x
    return x

  @jax.jit
  def step(params, state, x, y):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean((forward(p, x) - y) ** 2))(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  w_true = jax.random.normal(jax.random.PRNGKey(1), (32, 4))
  for i in range(101):
    x = jax.random.normal(jax.random.PRNGKey(100 + i), (256, 32), out_sharding=P("data", None))
    y = jnp.tanh(x @ w_true / np.sqrt(32))
    params, state, loss = step(params, state, x, y)
    if i % 25 == 0:
      print(f"step {i:3d}  loss {float(loss):.4f}")
  w, mu = params[0]["w"], optax.tree.get(state, "mu")[0]["w"]
  print(
    f"{jax.device_count()} devices, mesh {dict(mesh.shape)}, axis types "
    f"{[t.name for t in mesh.axis_types]}; first weight {jax.typeof(w)}, "
    f"its Adam first moment {jax.typeof(mu)}"
  )


if __name__ == "__main__":
  main()
