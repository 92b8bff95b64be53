"""The study's model: the paper's transformer classifier.

A :class:`~qsgd_optax.nn.Transformer` encoder with mean pooling and a linear
head, at the paper's synthetic-classification settings.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from typing import Optional

import jax
from flax import nnx

from qsgd_optax.nn import ScoreCircuit, Transformer


class TransformerClassifier(nnx.Module):
  """Sequence classifier: transformer encoder, mean pooling, linear head.

  Defaults are the paper's synthetic-classification settings: embedding 64,
  4 heads, FFN 128, 2 layers, dropout 0.1.

  Args:
    vocab_size: number of tokens.
    max_len: longest sequence (rows of the learned position table).
    num_classes: number of classes (outputs of the linear head).
    d_model: model width.
    num_heads: attention heads of every block.
    d_ff: hidden width of every block's MLP.
    num_layers: number of transformer blocks.
    dropout: dropout rate of every block.
    circuit: a :class:`~qsgd_optax.nn.ScoreCircuit` for quantum
      attention, ``None`` for classical attention.
    rngs: ``nnx.Rngs`` for the initial parameters.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from study.models import TransformerClassifier
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
  ) -> None:
    self.encoder = Transformer(
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
    self.head = nnx.Linear(d_model, num_classes, rngs=rngs)

  def __call__(
    self, tokens: jax.Array, deterministic: bool = False, rngs: Optional[nnx.Rngs] = None
  ) -> jax.Array:
    """Logits; dropout (unless ``deterministic``) draws from ``rngs``."""
    h = self.encoder(tokens, deterministic=deterministic, rngs=rngs)
    return self.head(h.mean(axis=1))
