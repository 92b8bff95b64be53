"""The paper's quantum attention (Flax NNX) and the transformers built on it.

Needs ``flax`` (``pip install 'qsgd-optax[examples]'``); ``import qsgd_optax``
does not import it.
"""

from qsgd_optax._src.attention import MultiHeadAttention, ScoreCircuit
from qsgd_optax._src.transformer import Block, CausalLM, Transformer

__all__ = ["Block", "CausalLM", "MultiHeadAttention", "ScoreCircuit", "Transformer"]
