"""The study: synthetic tasks, the training harness and the demo.

Reproduces the paper's experiments on top of :mod:`qsgd_optax.nn`; needs the
``examples`` extra (flax, matplotlib, tqdm). The optimizer core never imports
this package.
"""

from qsgd_optax.experiments.classification import (
  ClassificationSetup,
  epochs_to,
  markdown,
  optimizer,
  plot,
  summarize,
  train_classifier,
)

__all__ = [
  "ClassificationSetup",
  "epochs_to",
  "markdown",
  "optimizer",
  "plot",
  "summarize",
  "train_classifier",
]
