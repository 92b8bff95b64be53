"""Small Flax NNX transformers built on quantum attention: an encoder and a causal LM.

Both use :class:`~qsgd_optax.nn.MultiHeadAttention`, so either can be
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

from qsgd_optax._src.attention import MultiHeadAttention, ScoreCircuit


class Block(nnx.Module):
  """Pre-norm transformer block: attention and a ReLU MLP, with dropout.

  Args:
    d_model: model width.
    num_heads: attention heads.
    d_ff: hidden width of the MLP.
    dropout: dropout rate (attention weights, both residual branches).
    circuit: a :class:`~qsgd_optax._src.attention.ScoreCircuit` for quantum
      attention, ``None`` for classical attention.
    rngs: ``nnx.Rngs`` for the initial parameters.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from qsgd_optax.nn import Block
    >>> block = Block(16, 2, 32, rngs=nnx.Rngs(0))
    >>> block(jnp.ones((2, 5, 16)), deterministic=True).shape
    (2, 5, 16)
  """

  def __init__(
    self,
    d_model: int,
    num_heads: int,
    d_ff: int,
    *,
    dropout: float = 0.0,
    circuit: Optional[ScoreCircuit] = None,
    rngs: nnx.Rngs,
  ) -> None:
    self.norm1 = nnx.LayerNorm(d_model, rngs=rngs)
    self.attn = MultiHeadAttention(d_model, num_heads, circuit=circuit, dropout=dropout, rngs=rngs)
    self.norm2 = nnx.LayerNorm(d_model, rngs=rngs)
    self.ff1 = nnx.Linear(d_model, d_ff, rngs=rngs)
    self.ff2 = nnx.Linear(d_ff, d_model, rngs=rngs)
    self.drop = nnx.Dropout(dropout)

  def __call__(
    self,
    x: jax.Array,
    mask: Optional[jax.Array] = None,
    deterministic: bool = False,
    rngs: Optional[nnx.Rngs] = None,
  ) -> jax.Array:
    a = self.attn(self.norm1(x), mask, deterministic=deterministic, rngs=rngs)
    x = x + self.drop(a, deterministic=deterministic, rngs=rngs)
    h = self.ff2(jax.nn.relu(self.ff1(self.norm2(x))))
    return x + self.drop(h, deterministic=deterministic, rngs=rngs)


class Transformer(nnx.Module):
  """Token and position embeddings, then ``num_layers`` blocks and a norm.

  Args:
    vocab_size: number of tokens.
    max_len: longest sequence (rows of the learned position table).
    d_model: model width, of the embeddings and every :class:`Block`.
    num_heads: attention heads of every block.
    d_ff: hidden width of every block's MLP.
    num_layers: number of blocks.
    dropout: dropout rate of every block.
    circuit: a :class:`~qsgd_optax._src.attention.ScoreCircuit` shared by every
      block's attention (quantum attention), ``None`` for classical attention.
    rngs: ``nnx.Rngs`` for the initial parameters.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from qsgd_optax.nn import Transformer
    >>> body = Transformer(30, 12, d_model=16, num_heads=2, d_ff=32, num_layers=1,
    ...                    rngs=nnx.Rngs(0))
    >>> body(jnp.zeros((2, 7), jnp.int32), deterministic=True).shape
    (2, 7, 16)
  """

  def __init__(
    self,
    vocab_size: int,
    max_len: int,
    *,
    d_model: int,
    num_heads: int,
    d_ff: int,
    num_layers: int,
    dropout: float = 0.0,
    circuit: Optional[ScoreCircuit] = None,
    rngs: nnx.Rngs,
  ) -> None:
    self.embed = nnx.Embed(vocab_size, d_model, rngs=rngs)
    self.pos = nnx.Param(jax.random.normal(rngs.params(), (max_len, d_model)) * 0.02)
    self.blocks = nnx.List(
      [
        Block(d_model, num_heads, d_ff, dropout=dropout, circuit=circuit, rngs=rngs)
        for _ in range(num_layers)
      ]
    )
    self.norm = nnx.LayerNorm(d_model, rngs=rngs)

  def __call__(
    self,
    tokens: jax.Array,
    mask: Optional[jax.Array] = None,
    deterministic: bool = False,
    rngs: Optional[nnx.Rngs] = None,
  ) -> jax.Array:
    x = self.embed(tokens) + self.pos[: tokens.shape[1]]
    for block in self.blocks:
      x = block(x, mask, deterministic=deterministic, rngs=rngs)
    return self.norm(x)


class CausalLM(nnx.Module):
  """Decoder-only language model with tied input/output embeddings.

  The output logits are the final hidden states times the token embedding
  table; every position attends to itself and earlier positions only.

  Args:
    vocab_size: number of tokens (rows of the tied embedding table).
    max_len: longest sequence (rows of the learned position table).
    d_model: model width.
    num_heads: attention heads of every block.
    d_ff: hidden width of every block's MLP.
    num_layers: number of transformer blocks.
    dropout: dropout rate of every block.
    circuit: a :class:`~qsgd_optax._src.attention.ScoreCircuit` for quantum
      attention, ``None`` for classical attention.
    rngs: ``nnx.Rngs`` for the initial parameters.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from qsgd_optax.nn import CausalLM
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
  ) -> None:
    self.body = Transformer(
      vocab_size,
      max_len,
      d_model=d_model,
      num_heads=num_heads,
      d_ff=d_ff,
      num_layers=num_layers,
      dropout=dropout,
      circuit=circuit,
      rngs=rngs,
    )

  def __call__(
    self, tokens: jax.Array, deterministic: bool = False, rngs: Optional[nnx.Rngs] = None
  ) -> jax.Array:
    """Next-token logits ``(batch, length, vocab_size)``; causal mask."""
    length = tokens.shape[1]
    mask = jnp.tril(jnp.ones((length, length), bool))
    h = self.body(tokens, mask, deterministic=deterministic, rngs=rngs)
    return self.body.embed.attend(h)


__all__ = ["Block", "CausalLM", "Transformer"]
