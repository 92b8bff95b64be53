"""A Flax Linen ``TrainState`` loop with ``chain(superpose(...), adamw(...))``.

Run: python examples/flax_linen.py
"""

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax.training import train_state

import qsgd_optax


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(1)(nn.tanh(nn.Dense(64)(x)))


def main():
  x = jnp.linspace(-3, 3, 256)[:, None]
  y = jnp.sin(2 * x)
  model = MLP()
  ring = qsgd_optax.Circuit(entanglement="ring")
  tx = optax.chain(qsgd_optax.superpose(0.5, ring), optax.adamw(3e-3))
  state = train_state.TrainState.create(
    apply_fn=model.apply, params=model.init(jax.random.PRNGKey(0), x), tx=tx
  )

  @jax.jit
  def step(state):
    def loss_fn(params):
      return jnp.mean((state.apply_fn(params, x) - y) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss  # Passes params to tx.

  for i in range(2001):
    state, loss = step(state)
    if i % 500 == 0:
      print(f"step {i:4d}  mse {float(loss):.4f}")


if __name__ == "__main__":
  main()
