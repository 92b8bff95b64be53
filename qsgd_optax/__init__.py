"""qsgd-optax: Superpositional Gradient Descent as an Optax transformation.

Everything users call is here: the optimizer (:func:`qsgd`, its direction
part :func:`scale_by_qsgd`, and the perturbation alone, :func:`superpose`),
the circuit they take (:class:`Circuit`, whose :attr:`~Circuit.gates` are a
:class:`Gates`), the modulation it gives (:func:`modulation`,
:func:`expectations`), a diagnostic (:func:`update_change`) and a drawing
(:func:`draw`). The ways to evaluate a circuit are in
:mod:`qsgd_optax.backends`; the formulations of the grouped evaluation, for
measurement, in :mod:`qsgd_optax.grouping`; the paper's quantum-attention
layer in :mod:`qsgd_optax.nn` (needs Flax). The implementation lives in
private modules (``qsgd_optax._src``). Importing ``qsgd_optax`` imports
neither Flax nor PennyLane.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from qsgd_optax import backends
from qsgd_optax._src import moved
from qsgd_optax._src.alias import PLACEMENTS, ScaleByQSGDState, qsgd, scale_by_qsgd
from qsgd_optax._src.circuit import Circuit
from qsgd_optax._src.diagnostics import UpdateChange, relative_change, update_change
from qsgd_optax._src.drawing import draw
from qsgd_optax._src.gates import Gate, Gates, entangling_pairs
from qsgd_optax._src.modulation import expectations, modulation
from qsgd_optax._src.superpose import SuperposeState, superpose

__version__ = "0.7.0"

__all__ = [
  "PLACEMENTS",
  "Circuit",
  "Gate",
  "Gates",
  "ScaleByQSGDState",
  "SuperposeState",
  "UpdateChange",
  "backends",
  "draw",
  "entangling_pairs",
  "expectations",
  "modulation",
  "qsgd",
  "relative_change",
  "scale_by_qsgd",
  "superpose",
  "update_change",
]

__getattr__ = moved.renamed_attribute
moved.install()
