import inspect

import jax
import numpy as np
import pytest
from flax import nnx

from qsgd_optax.nn import Block, CausalLM, MultiHeadAttention, Transformer


def test_causal_lm_is_causal():
  lm = CausalLM(30, 10, d_model=16, num_heads=2, d_ff=32, num_layers=2, rngs=nnx.Rngs(0))
  x = jax.random.randint(jax.random.PRNGKey(0), (1, 10), 0, 30)
  y = x.at[0, 7].set((x[0, 7] + 1) % 30)
  a, b = lm(x, deterministic=True), lm(y, deterministic=True)
  np.testing.assert_allclose(a[0, :7], b[0, :7], atol=1e-6)
  assert not np.allclose(a[0, 7:], b[0, 7:])


@pytest.mark.parametrize(
  "module, sizes",
  [
    (MultiHeadAttention, ["d_model", "num_heads"]),
    (Block, ["d_model", "num_heads", "d_ff"]),
    (Transformer, ["vocab_size", "max_len"]),
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
