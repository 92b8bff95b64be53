"""Training harness shared by the demo and the benchmarks.

One run trains a :class:`~qsgd_optax.transformer.TransformerClassifier` on
:func:`~qsgd_optax.tasks.topic_sequences` with a given optimizer and seed:
each epoch is one jitted ``lax.scan`` over shuffled mini-batches, then the
test set is evaluated. Wall time per epoch excludes compilation (the first
call is timed separately).

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from qsgd_optax.alias import qsgd
from qsgd_optax.attention import ScoreCircuit
from qsgd_optax.tasks import topic_sequences
from qsgd_optax.transformer import TransformerClassifier


def optimizer(name: str, learning_rate, weight_decay: float = 0.0):
  """``"adam"``, ``"adamw"``, or ``"qsgd-<lambda>[-update]"``.

  Examples:
    >>> from qsgd_optax.experiments import optimizer
    >>> tx = optimizer("qsgd-0.5-update", 1e-3)
  """
  if name == "adam":
    return optax.adam(learning_rate)
  if name == "adamw":
    return optax.adamw(learning_rate, weight_decay=weight_decay)
  parts = name.split("-")
  if parts[0] != "qsgd" or len(parts) not in (2, 3):
    raise ValueError(f"unknown optimizer {name!r}")
  placement = parts[2] if len(parts) == 3 else "gradient"
  return qsgd(learning_rate, float(parts[1]), weight_decay=weight_decay,
              placement=placement)


@dataclasses.dataclass
class ClassificationSetup:
  """The paper's synthetic-classification settings (Section IV / appendix)."""

  n_train: int = 4000
  n_test: int = 1000
  epochs: int = 10
  batch_size: int = 32
  learning_rate: float = 1e-3
  weight_decay: float = 0.0
  quantum_attention: bool = False
  data_seed: int = 1234
  model: dict = dataclasses.field(default_factory=dict)


def train_classifier(setup: ClassificationSetup, opt_name: str, seed: int,
                     on_epoch: Optional[Callable[[int], None]] = None) -> dict:
  """Trains one run; returns its per-epoch history and timings."""
  x, y = topic_sequences(setup.n_train + setup.n_test, seed=setup.data_seed)
  x_tr, y_tr = jnp.asarray(x[: setup.n_train]), jnp.asarray(y[: setup.n_train])
  x_te, y_te = jnp.asarray(x[setup.n_train:]), jnp.asarray(y[setup.n_train:])
  circuit = ScoreCircuit.build() if setup.quantum_attention else None
  model = TransformerClassifier(
      int(x.max()) + 1, x.shape[1], int(y.max()) + 1, circuit=circuit,
      rngs=nnx.Rngs(seed), **setup.model)
  graphdef, params = nnx.split(model, nnx.Param)
  tx = optimizer(opt_name, setup.learning_rate, setup.weight_decay)
  opt_state = tx.init(params)
  steps = setup.n_train // setup.batch_size

  def loss_fn(params, xb, yb, key):
    logits = nnx.merge(graphdef, params)(xb, rngs=nnx.Rngs(dropout=key))
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  @jax.jit
  def epoch(params, opt_state, key):
    key, shuffle = jax.random.split(key)
    order = jax.random.permutation(shuffle, setup.n_train)
    batches = order[: steps * setup.batch_size].reshape(steps, setup.batch_size)

    def step(carry, inputs):
      params, opt_state = carry
      idx, k = inputs
      loss, grads = jax.value_and_grad(loss_fn)(params, x_tr[idx], y_tr[idx], k)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(
        step, (params, opt_state), (batches, jax.random.split(key, steps)))
    return params, opt_state, losses.mean()

  @jax.jit
  def accuracy(params):
    logits = nnx.merge(graphdef, params)(x_te, deterministic=True)
    return jnp.mean(jnp.argmax(logits, -1) == y_te)

  key = jax.random.PRNGKey(seed)
  start = time.perf_counter()
  epoch.lower(params, opt_state, key).compile()
  compile_s = time.perf_counter() - start
  history = dict(train_loss=[], test_acc=[], epoch_s=[])
  for e in range(setup.epochs):
    key, sub = jax.random.split(key)
    start = time.perf_counter()
    params, opt_state, loss = epoch(params, opt_state, sub)
    loss = float(loss)
    history["epoch_s"].append(time.perf_counter() - start)
    history["train_loss"].append(loss)
    history["test_acc"].append(float(accuracy(params)))
    if on_epoch is not None:
      on_epoch(e)
  return dict(optimizer=opt_name, seed=seed, steps_per_epoch=steps,
              compile_s=compile_s, **history)


def epochs_to(acc_history, threshold):
  """First epoch (1-based) whose test accuracy reaches ``threshold``."""
  hits = np.flatnonzero(np.asarray(acc_history) >= threshold)
  return int(hits[0]) + 1 if hits.size else None
