"""Training harness shared by the demo and the benchmarks.

One run trains a :class:`~qsgd_optax.nn.transformer.TransformerClassifier` on
:func:`~qsgd_optax.experiments.tasks.topic_sequences` with a given optimizer and seed:
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
from qsgd_optax.experiments.tasks import topic_sequences
from qsgd_optax.nn.attention import ScoreCircuit
from qsgd_optax.nn.transformer import TransformerClassifier


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
  return qsgd(learning_rate, float(parts[1]), weight_decay=weight_decay, placement=placement)


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


def train_classifier(
  setup: ClassificationSetup,
  opt_name: str,
  seed: int,
  on_epoch: Optional[Callable[[int], None]] = None,
) -> dict:
  """Trains one run; returns its per-epoch history and timings."""
  x, y = topic_sequences(setup.n_train + setup.n_test, seed=setup.data_seed)
  x_tr, y_tr = jnp.asarray(x[: setup.n_train]), jnp.asarray(y[: setup.n_train])
  x_te, y_te = jnp.asarray(x[setup.n_train :]), jnp.asarray(y[setup.n_train :])
  circuit = ScoreCircuit.build() if setup.quantum_attention else None
  model = TransformerClassifier(
    int(x.max()) + 1,
    x.shape[1],
    int(y.max()) + 1,
    circuit=circuit,
    rngs=nnx.Rngs(seed),
    **setup.model,
  )
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
      step, (params, opt_state), (batches, jax.random.split(key, steps))
    )
    return params, opt_state, losses.mean()

  @jax.jit
  def accuracy(params):
    logits = nnx.merge(graphdef, params)(x_te, deterministic=True)
    return jnp.mean(jnp.argmax(logits, -1) == y_te)

  key = jax.random.PRNGKey(seed)
  start = time.perf_counter()
  epoch.lower(params, opt_state, key).compile()
  compile_s = time.perf_counter() - start
  history: dict[str, list[float]] = dict(train_loss=[], test_acc=[], epoch_s=[])
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
  return dict(optimizer=opt_name, seed=seed, steps_per_epoch=steps, compile_s=compile_s, **history)


def epochs_to(acc_history, threshold):
  """First epoch (1-based) whose test accuracy reaches ``threshold``."""
  hits = np.flatnonzero(np.asarray(acc_history) >= threshold)
  return int(hits[0]) + 1 if hits.size else None


def _group(runs: list[dict]) -> dict:
  """Runs keyed by (attention, optimizer)."""
  groups: dict = {}
  for r in runs:
    groups.setdefault((r.get("attention", "classical"), r["optimizer"]), []).append(r)
  return groups


def _epoch_time(run: dict) -> float:
  """Median seconds per epoch after the first (warm caches)."""
  return float(np.median(run["epoch_s"][1:] or run["epoch_s"]))


def summarize(runs: list[dict], baseline: str = "adam", threshold: float = 0.9) -> list[dict]:
  """Per (attention, optimizer): final accuracy, epochs to ``threshold``,
  time per epoch and its ratio to ``baseline``, and a paired comparison of
  final accuracy with ``baseline`` over the seeds both ran."""
  from scipy import stats  # pylint: disable=import-outside-toplevel

  groups = _group(runs)
  rows = []
  for (attn, opt), rs in groups.items():
    acc = np.array([r["test_acc"][-1] for r in rs])
    reach = [epochs_to(r["test_acc"], threshold) for r in rs]
    hit = [e for e in reach if e is not None]
    epoch_s = float(np.median([_epoch_time(r) for r in rs]))
    row = dict(
      attention=attn,
      optimizer=opt,
      seeds=len(rs),
      final_acc_mean=float(acc.mean()),
      final_acc_std=float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
      final_loss_mean=float(np.mean([r["train_loss"][-1] for r in rs])),
      epochs_to_threshold_mean=float(np.mean(hit)) if hit else None,
      reached=f"{len(hit)}/{len(rs)}",
      steps_to_threshold_mean=float(np.mean(hit)) * rs[0]["steps_per_epoch"] if hit else None,
      epoch_s=epoch_s,
    )
    base = {r["seed"]: r for r in groups.get((attn, baseline), [])}
    paired = [(r["test_acc"][-1], base[r["seed"]]["test_acc"][-1]) for r in rs if r["seed"] in base]
    if opt != baseline and len(paired) > 1:
      a, b = np.array(paired).T
      diff = a - b
      row.update(
        diff_vs_baseline=float(diff.mean()),
        wins=f"{int((diff > 0).sum())}/{len(diff)}",
        p_value=float(stats.ttest_rel(a, b).pvalue) if np.any(diff) else 1.0,
      )
    base_t = [_epoch_time(r) for r in groups.get((attn, baseline), [])]
    row["epoch_time_ratio"] = epoch_s / float(np.median(base_t)) if base_t else None
    rows.append(row)
  return rows


def markdown(rows: list[dict], threshold: float = 0.9) -> str:
  """The summary as a markdown table."""
  pct = f"{threshold:.0%}"
  lines = [
    f"| attention | optimizer | seeds | final test acc | epochs to {pct} (reached) "
    f"| steps to {pct} | s/epoch | time ratio | diff vs adam (wins, paired t p) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    ep = (
      "never" if r["epochs_to_threshold_mean"] is None else f"{r['epochs_to_threshold_mean']:.1f}"
    )
    st = "" if r["steps_to_threshold_mean"] is None else f"{r['steps_to_threshold_mean']:.0f}"
    ratio = "" if r["epoch_time_ratio"] is None else f"{r['epoch_time_ratio']:.2f}"
    diff = ""
    if "diff_vs_baseline" in r:
      diff = f"{100 * r['diff_vs_baseline']:+.2f} pts ({r['wins']}, p={r['p_value']:.2f})"
    lines.append(
      f"| {r['attention']} | {r['optimizer']} | {r['seeds']} | "
      f"{100 * r['final_acc_mean']:.2f} +- {100 * r['final_acc_std']:.2f} | "
      f"{ep} ({r['reached']}) | {st} | {r['epoch_s']:.2f} | {ratio} | {diff} |"
    )
  return "\n".join(lines)


def plot(runs: list[dict], path: str, metrics=("test_acc", "train_loss")) -> None:
  """Curves per (attention, optimizer): mean over seeds, min-max shaded."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  groups = _group(runs)
  attns = sorted({a for a, _ in groups})
  fig, axes = plt.subplots(
    len(attns), len(metrics), squeeze=False, figsize=(6 * len(metrics), 3.8 * len(attns))
  )
  for row, attn in zip(axes, attns):
    for ax, metric in zip(row, metrics):
      for (a, opt), rs in sorted(groups.items()):
        if a != attn:
          continue
        curves = np.array([r[metric] for r in rs])
        x = np.arange(1, curves.shape[1] + 1)
        mean = curves.mean(0)
        ax.plot(x, mean, label=f"{opt} (n={len(rs)})", ls="--" if opt.startswith("adam") else "-")
        ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.15)
      ax.set_xlabel("epoch")
      ax.set_ylabel(metric.replace("_", " "))
      ax.set_title(f"{attn} attention")
      ax.grid(alpha=0.3)
      if metric == "train_loss":
        ax.set_yscale("log")
    row[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
