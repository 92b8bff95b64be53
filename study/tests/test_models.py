"""The study's classifier: it learns with ``qsgd`` in an NNX optimizer; dropout; signature."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import qsgd_optax
from qsgd_optax.nn import ScoreCircuit
from study.models import TransformerClassifier


@pytest.mark.parametrize("circuit", [None, ScoreCircuit.build()], ids=["classical", "quantum"])
def test_classifier_learns_with_nnx_optimizer(circuit):
  x = jax.random.randint(jax.random.PRNGKey(0), (16, 8), 1, 20)
  y = (x[:, 0] > 10).astype(jnp.int32)
  model = TransformerClassifier(
    20,
    8,
    2,
    d_model=16,
    num_heads=2,
    d_ff=32,
    num_layers=1,
    dropout=0.0,
    circuit=circuit,
    rngs=nnx.Rngs(0),
  )
  opt = nnx.Optimizer(model, qsgd_optax.qsgd(3e-3), wrt=nnx.Param)

  @nnx.jit
  def step(model, opt):
    def loss_fn(model):
      logits = model(x, deterministic=True)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss

  losses = [float(step(model, opt)) for _ in range(60)]
  assert losses[-1] < 0.5 * losses[0]


def test_dropout_needs_rngs_only_when_training():
  model = TransformerClassifier(
    20, 8, 2, d_model=16, num_heads=2, d_ff=32, num_layers=1, rngs=nnx.Rngs(0)
  )
  x = jnp.ones((2, 8), jnp.int32)
  a = model(x, rngs=nnx.Rngs(dropout=1))
  b = model(x, rngs=nnx.Rngs(dropout=2))
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model(x, deterministic=True), model(x, deterministic=True))


def test_constructor_takes_sizes_then_keywords():
  """As Flax's own modules: leading sizes, then keyword-only options, ``rngs`` among them."""
  params = list(inspect.signature(TransformerClassifier.__init__).parameters.values())[1:]
  sizes = ["vocab_size", "max_len", "num_classes"]
  assert [p.name for p in params[:3]] == sizes
  assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])
  assert "rngs" in [p.name for p in params[3:]]
