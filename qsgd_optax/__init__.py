"""qsgd-optax: Superpositional Gradient Descent as an Optax transformation.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from qsgd_optax.alias import qsgd
from qsgd_optax.circuit import Gate, PerturbationCircuit, entangling_pairs
from qsgd_optax.drawing import draw
from qsgd_optax.superpose import SuperposeState, superpose

__version__ = "0.1.0"

__all__ = [
    "Gate",
    "PerturbationCircuit",
    "SuperposeState",
    "draw",
    "entangling_pairs",
    "qsgd",
    "superpose",
]
