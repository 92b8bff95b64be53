"""qsgd-optax: Superpositional Gradient Descent as an Optax transformation.

The optimizer core lives in this package: the circuit's gates
(:mod:`~qsgd_optax.circuit`), ways to evaluate them
(:mod:`~qsgd_optax.backends`), the :class:`Circuit` value and the modulation
it gives (:mod:`~qsgd_optax.modulation`), the transformation
(:mod:`~qsgd_optax.superpose`), the optimizer alias
(:mod:`~qsgd_optax.alias`) and a diagnostic (:mod:`~qsgd_optax.diagnostics`).
The paper's models are in :mod:`qsgd_optax.nn` and its experiments in
:mod:`qsgd_optax.experiments`; importing ``qsgd_optax`` imports neither (nor PennyLane).

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from qsgd_optax.alias import PLACEMENTS, ScaleByQSGDState, qsgd, scale_by_qsgd
from qsgd_optax.circuit import Gate, PerturbationCircuit, entangling_pairs
from qsgd_optax.drawing import draw
from qsgd_optax.modulation import Circuit
from qsgd_optax.superpose import SuperposeState, superpose

__version__ = "0.7.0"

__all__ = [
  "PLACEMENTS",
  "Circuit",
  "Gate",
  "PerturbationCircuit",
  "ScaleByQSGDState",
  "SuperposeState",
  "draw",
  "entangling_pairs",
  "qsgd",
  "scale_by_qsgd",
  "superpose",
]
