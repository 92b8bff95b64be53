"""A Flax NNX model trained with ``nnx.Optimizer(model, qsgd(...), wrt=nnx.Param)``.

Run: python examples/flax_nnx.py
"""

import jax
import jax.numpy as jnp
from flax import nnx

import qsgd_optax


class MLP(nnx.Module):
  def __init__(self, rngs):
    self.l1 = nnx.Linear(1, 64, rngs=rngs)
    self.l2 = nnx.Linear(64, 1, rngs=rngs)

  def __call__(self, x):
    return self.l2(jax.nn.tanh(self.l1(x)))


def main():
  x = jnp.linspace(-3, 3, 256)[:, None]
  y = jnp.sin(2 * x)
  model = MLP(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, qsgd_optax.qsgd(3e-3, quantum_weight=0.5), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  for i in range(2001):
    loss = step(model, optimizer)
    if i % 500 == 0:
      print(f"step {i:4d}  mse {float(loss):.4f}")


if __name__ == "__main__":
  main()
