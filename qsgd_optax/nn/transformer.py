"""Small Flax NNX transformers: the paper's classifier and a causal LM.

Both use :class:`qsgd_optax.nn.attention.MultiHeadAttention`, so either can be
the paper's Quantum Transformer (``circuit=ScoreCircuit.build()``) or a
classical one (``circuit=None``). Pre-norm blocks, learned positions.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from qsgd_optax.nn.attention import MultiHeadAttention, ScoreCircuit


class Block(nnx.Module):
  """Pre-norm transformer block: attention and a ReLU MLP, with dropout."""

  def __init__(self, d_model, num_heads, d_ff, dropout, circuit, rngs):
    self.norm1 = nnx.LayerNorm(d_model, rngs=rngs)
    self.attn = MultiHeadAttention(d_model, num_heads, circuit=circuit, dropout=dropout, rngs=rngs)
    self.norm2 = nnx.LayerNorm(d_model, rngs=rngs)
    self.ff1 = nnx.Linear(d_model, d_ff, rngs=rngs)
    self.ff2 = nnx.Linear(d_ff, d_model, rngs=rngs)
    self.drop = nnx.Dropout(dropout)

  def __call__(self, x, mask=None, deterministic=False, rngs=None):
    x = x + self.drop(
      self.attn(self.norm1(x), mask, deterministic, rngs), deterministic=deterministic, rngs=rngs
    )
    h = self.ff2(jax.nn.relu(self.ff1(self.norm2(x))))
    return x + self.drop(h, deterministic=deterministic, rngs=rngs)


class Transformer(nnx.Module):
  """Token and position embeddings, then ``num_layers`` blocks and a norm."""

  def __init__(
    self, vocab_size, max_len, d_model, num_heads, d_ff, num_layers, dropout, circuit, rngs
  ):
    self.embed = nnx.Embed(vocab_size, d_model, rngs=rngs)
    self.pos = nnx.Param(jax.random.normal(rngs.params(), (max_len, d_model)) * 0.02)
    self.blocks = nnx.List(
      [Block(d_model, num_heads, d_ff, dropout, circuit, rngs) for _ in range(num_layers)]
    )
    self.norm = nnx.LayerNorm(d_model, rngs=rngs)

  def __call__(self, tokens, mask=None, deterministic=False, rngs=None):
    x = self.embed(tokens) + self.pos[: tokens.shape[1]]
    for block in self.blocks:
      x = block(x, mask, deterministic, rngs)
    return self.norm(x)


class TransformerClassifier(nnx.Module):
  """Sequence classifier: transformer encoder, mean pooling, linear head.

  Defaults are the paper's synthetic-classification settings: embedding 64,
  4 heads, FFN 128, 2 layers, dropout 0.1.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from qsgd_optax.nn.transformer import TransformerClassifier
    >>> model = TransformerClassifier(50, 16, 4, rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((2, 16), jnp.int32), deterministic=True).shape
    (2, 4)
  """

  def __init__(
    self,
    vocab_size: int,
    max_len: int,
    num_classes: int,
    *,
    d_model: int = 64,
    num_heads: int = 4,
    d_ff: int = 128,
    num_layers: int = 2,
    dropout: float = 0.1,
    circuit: Optional[ScoreCircuit] = None,
    rngs: nnx.Rngs,
  ):
    self.encoder = Transformer(
      vocab_size, max_len, d_model, num_heads, d_ff, num_layers, dropout, circuit, rngs
    )
    self.head = nnx.Linear(d_model, num_classes, rngs=rngs)

  def __call__(self, tokens, deterministic: bool = False, rngs: Optional[nnx.Rngs] = None):
    """Logits; dropout (unless ``deterministic``) draws from ``rngs``."""
    return self.head(self.encoder(tokens, None, deterministic, rngs).mean(axis=1))


class CausalLM(nnx.Module):
  """Decoder-only language model with tied input/output embeddings.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from qsgd_optax.nn.transformer import CausalLM
    >>> lm = CausalLM(30, 12, d_model=16, num_heads=2, d_ff=32, num_layers=1,
    ...               rngs=nnx.Rngs(0))
    >>> lm(jnp.zeros((1, 12), jnp.int32), deterministic=True).shape
    (1, 12, 30)
  """

  def __init__(
    self,
    vocab_size: int,
    max_len: int,
    *,
    d_model: int = 128,
    num_heads: int = 4,
    d_ff: int = 512,
    num_layers: int = 4,
    dropout: float = 0.0,
    circuit: Optional[ScoreCircuit] = None,
    rngs: nnx.Rngs,
  ):
    self.body = Transformer(
      vocab_size, max_len, d_model, num_heads, d_ff, num_layers, dropout, circuit, rngs
    )

  def __call__(self, tokens, deterministic: bool = False, rngs: Optional[nnx.Rngs] = None):
    length = tokens.shape[1]
    mask = jnp.tril(jnp.ones((length, length), bool))
    return self.body.embed.attend(self.body(tokens, mask, deterministic, rngs))


__all__ = ["CausalLM", "TransformerClassifier"]
