"""Models for the paper's experiments (Flax NNX): quantum attention and the
transformers built on it. Needs ``flax`` (``pip install 'qsgd-optax[examples]'``);
the optimizer core never imports this package."""

from qsgd_optax.nn.attention import MultiHeadAttention, ScoreCircuit
from qsgd_optax.nn.transformer import CausalLM, TransformerClassifier

__all__ = ["CausalLM", "MultiHeadAttention", "ScoreCircuit", "TransformerClassifier"]
