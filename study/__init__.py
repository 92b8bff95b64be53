"""The study: tasks, controls, the training harness and the demo.

Reproduces the paper's experiments on top of :mod:`qsgd_optax.nn`; needs the
``examples`` extra (flax, matplotlib, tqdm, scipy, scikit-learn). The
optimizer core never imports this package.
"""

from study.classification import (
  ClassificationSetup,
  Problem,
  epochs_to,
  markdown,
  optimizer,
  plot,
  summarize,
  train_classifier,
  train_seeds,
)

__all__ = [
  "ClassificationSetup",
  "Problem",
  "epochs_to",
  "markdown",
  "optimizer",
  "plot",
  "summarize",
  "train_classifier",
  "train_seeds",
]
