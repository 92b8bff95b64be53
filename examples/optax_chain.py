"""Train a small MLP with ``optax.chain(superpose(...), optax.adamw(...))``.

A plain-JAX loop on a synthetic two-spirals classification task, against
plain AdamW with the same learning rate, over a few seeds. Prints the final
training loss and test accuracy of each.

Run: python examples/optax_chain.py
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import qsgd_optax


def spirals(n, seed):
  rng = np.random.default_rng(seed)
  t = np.sqrt(rng.uniform(0.05, 1, n)) * 3 * np.pi
  label = rng.integers(0, 2, n)
  r = t * (2 * label - 1)
  x = np.stack([r * np.cos(t), r * np.sin(t)], 1) / 10 + rng.normal(0, 0.02, (n, 2))
  return jnp.asarray(x, jnp.float32), jnp.asarray(label)


def init_mlp(key, sizes=(2, 64, 64, 2)):
  keys = jax.random.split(key, len(sizes) - 1)
  return [
    {"w": jax.random.normal(k, (a, b)) * np.sqrt(2 / a), "b": jnp.zeros(b)}
    for k, a, b in zip(keys, sizes[:-1], sizes[1:])
  ]


def forward(params, x):
  for layer in params[:-1]:
    x = jax.nn.relu(x @ layer["w"] + layer["b"])
  return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()


def make_step(tx, batch=128):
  """One compiled training step of ``tx``, shared by every seed."""

  @jax.jit
  def step(params, state, x, y, key):
    idx = jax.random.randint(key, (batch,), 0, x.shape[0])
    loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  return step


def train(tx, step, seed, steps=500):
  x, y = spirals(4096, seed)
  x_test, y_test = spirals(2048, seed + 1000)
  params = init_mlp(jax.random.PRNGKey(seed))
  state = tx.init(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)
  for key in keys:
    params, state, _ = step(params, state, x, y, key)
  accuracy = jnp.mean(jnp.argmax(forward(params, x_test), -1) == y_test)
  return float(loss_fn(params, x, y)), float(accuracy)


def main(seeds=(0, 1, 2)):
  lr = optax.cosine_decay_schedule(3e-3, 500)
  optimizers = {
    "adamw": optax.adamw(lr),
    "superpose+adamw": optax.chain(qsgd_optax.superpose(quantum_weight=0.5), optax.adamw(lr)),
  }
  print(f"two spirals, MLP 2-64-64-2, 500 steps, seeds {list(seeds)}")
  for name, tx in optimizers.items():
    start = time.perf_counter()
    step = make_step(tx)
    runs = np.array([train(tx, step, s) for s in seeds])
    print(
      f"{name:>16}: train loss {runs[:, 0].mean():.4f} +- {runs[:, 0].std():.4f}"
      f"   test acc {runs[:, 1].mean():.3f} +- {runs[:, 1].std():.3f}"
      f"   ({time.perf_counter() - start:.1f}s)"
    )


if __name__ == "__main__":
  main()
