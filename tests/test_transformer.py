import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import qsgd_optax
from qsgd_optax.nn.attention import MultiHeadAttention, ScoreCircuit
from qsgd_optax.nn.transformer import Block, CausalLM, Transformer, TransformerClassifier


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


def test_causal_lm_is_causal():
  lm = CausalLM(30, 10, d_model=16, num_heads=2, d_ff=32, num_layers=2, rngs=nnx.Rngs(0))
  x = jax.random.randint(jax.random.PRNGKey(0), (1, 10), 0, 30)
  y = x.at[0, 7].set((x[0, 7] + 1) % 30)
  a, b = lm(x, deterministic=True), lm(y, deterministic=True)
  np.testing.assert_allclose(a[0, :7], b[0, :7], atol=1e-6)
  assert not np.allclose(a[0, 7:], b[0, 7:])


def test_dropout_needs_rngs_only_when_training():
  model = TransformerClassifier(
    20, 8, 2, d_model=16, num_heads=2, d_ff=32, num_layers=1, rngs=nnx.Rngs(0)
  )
  x = jnp.ones((2, 8), jnp.int32)
  a = model(x, rngs=nnx.Rngs(dropout=1))
  b = model(x, rngs=nnx.Rngs(dropout=2))
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(model(x, deterministic=True), model(x, deterministic=True))


@pytest.mark.parametrize(
  "module, sizes",
  [
    (MultiHeadAttention, ["d_model", "num_heads"]),
    (Block, ["d_model", "num_heads", "d_ff"]),
    (Transformer, ["vocab_size", "max_len"]),
    (TransformerClassifier, ["vocab_size", "max_len", "num_classes"]),
    (CausalLM, ["vocab_size", "max_len"]),
  ],
  ids=lambda v: getattr(v, "__name__", ""),
)
def test_constructors_take_sizes_then_keywords(module, sizes):
  """As Flax's own modules: leading sizes, then keyword-only options, ``rngs`` among them."""
  params = list(inspect.signature(module.__init__).parameters.values())[1:]
  assert [p.name for p in params[: len(sizes)]] == sizes
  assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[: len(sizes)])
  assert all(p.kind is p.KEYWORD_ONLY for p in params[len(sizes) :])
  assert "rngs" in [p.name for p in params[len(sizes) :]]
  assert all(p.annotation is not p.empty for p in params)
