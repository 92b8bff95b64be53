"""Training harness shared by the demo and the study's experiments.

A run trains a :class:`~study.models.TransformerClassifier` on a
task of :mod:`study.tasks` with a given optimizer. Seeds run
together under ``jax.vmap`` (seed ``s`` fixes the initial parameters, the data
order and the dropout keys, the same for every optimizer: runs are paired by
seed). Each epoch is one jitted ``lax.scan`` over shuffled mini-batches, then
the test set is evaluated. Wall time per epoch excludes compilation.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, Optional, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from qsgd_optax import qsgd
from qsgd_optax.nn import ScoreCircuit
from study import tasks
from study.controls import fixed_modulation
from study.models import TransformerClassifier

NOISE_FLOOR = 1e-6


def optimizer(
  name: str, learning_rate: optax.ScalarOrSchedule, weight_decay: float = 0.0, seed: int = 0
) -> optax.GradientTransformation:
  """An optimizer of the study, by name.

  ``name`` is ``"adam"``, ``"adamw"``, ``"qsgd-<lambda>[-update|-direction]"``,
  or a control: ``"floor"`` (Adam on gradients times ``1 + 1e-6 u``),
  ``"rand-<s>[-direction]"`` (the same with scale ``s``, on the gradient or on
  Adam's direction), ``"addnoise-<eta>"`` (``optax.add_noise(eta, 0.55)``
  before Adam).

  Args:
    name: the optimizer's name (above).
    learning_rate: the learning rate, or a schedule.
    weight_decay: the weight decay of every optimizer but ``"adam"``.
    seed: seed of the controls' random draws.

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    ValueError: for an unknown ``name``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from study.classification import optimizer
    >>> tx = optimizer("qsgd-0.5-direction", 1e-3)
    >>> tx = optimizer("adam", 0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, _ = tx.update(params, tx.init(params))
    >>> [round(float(u), 4) for u in updates["w"]]
    [-0.1, 0.1]
  """
  adamw = lambda: optax.adamw(learning_rate, weight_decay=weight_decay)
  parts = name.split("-")
  kind, placement = parts[0], parts[2] if len(parts) == 3 else "gradient"
  if name == "adam":
    return optax.adam(learning_rate)
  if name == "adamw":
    return adamw()
  if name == "floor":
    return optax.chain(fixed_modulation(NOISE_FLOOR, seed), adamw())
  if len(parts) in (2, 3) and kind in ("qsgd", "rand"):
    scale = float(parts[1])
    if kind == "qsgd":
      return qsgd(
        learning_rate,
        quantum_weight=scale,
        weight_decay=weight_decay,
        placement=cast(Any, placement),  # A name from the optimizer's label; qsgd checks it.
      )
    if placement == "gradient":
      return optax.chain(fixed_modulation(scale, seed), adamw())
    if placement == "direction":
      return optax.chain(
        optax.scale_by_adam(),
        fixed_modulation(scale, seed),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(learning_rate),
      )
  if kind == "addnoise":  # The variance may hold a minus sign: "addnoise-2e-05".
    return optax.chain(optax.add_noise(float(name.partition("-")[2]), 0.55, seed), adamw())
  raise ValueError(f"unknown optimizer {name!r}")


@dataclasses.dataclass
class ClassificationSetup:
  """The paper's classification settings (Section IV / appendix).

  ``n_train``/``n_test`` of ``None`` take the task's default sizes.
  ``task_kwargs`` are the synthetic task's generator settings (passed on by
  :func:`~study.tasks.load`, e.g. ``order_fraction``);
  ``model`` the :class:`~study.models.TransformerClassifier`'s
  keyword arguments (``d_model``, ``dropout``, ...).

  Attributes:
    task: the task's name, one of :data:`~study.tasks.TASKS`.
    n_train: number of training examples (``None``: the task's default).
    n_test: number of test examples (``None``: the task's default).
    epochs: number of training epochs.
    batch_size: examples per mini-batch; an epoch takes
      ``n_train // batch_size`` steps (the rest are dropped).
    learning_rate: the optimizer's learning rate.
    weight_decay: the optimizer's weight decay.
    quantum_attention: whether the model's attention carries the default
      :class:`~qsgd_optax.nn.ScoreCircuit` (else classical).
    data_seed: seed of the task's data, the same for every run.
    model: keyword arguments of the
      :class:`~study.models.TransformerClassifier`.
    task_kwargs: the synthetic task's generator settings.

  Examples:
    >>> from study.classification import ClassificationSetup
    >>> setup = ClassificationSetup(n_train=320, quantum_attention=True)
    >>> setup.task, setup.n_test, setup.attention
    ('topics', None, 'quantum')
  """

  task: str = "topics"
  n_train: Optional[int] = None
  n_test: Optional[int] = None
  epochs: int = 10
  batch_size: int = 32
  learning_rate: float = 1e-3
  weight_decay: float = 0.0
  quantum_attention: bool = False
  data_seed: int = 1234
  model: dict[str, Any] = dataclasses.field(default_factory=dict)
  task_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def attention(self) -> str:
    """``"quantum"`` or ``"classical"``: the attention runs are grouped by."""
    return "quantum" if self.quantum_attention else "classical"


class Problem:
  """Data, model and loss of a setup, with seeds' parameters stacked.

  Loads the setup's task (``x``, ``y`` for training, ``xt``, ``yt`` for
  testing), sizes a :class:`~study.models.TransformerClassifier`
  to its vocabulary, length and classes, and initialises one per seed: their
  parameters are stacked on a leading axis (``params``), next to the seeds'
  PRNG keys (``keys``).

  Args:
    setup: the task, model and training settings.
    seeds: the seeds; seed ``s`` initialises the parameters with
      ``nnx.Rngs(s)`` and starts the key ``jax.random.PRNGKey(s)``.

  Examples:
    >>> from study.classification import ClassificationSetup, Problem
    >>> setup = ClassificationSetup(n_train=64, n_test=16, model={"d_model": 16})
    >>> prob = Problem(setup, [0, 1])
    >>> prob.x.shape, prob.xt.shape, prob.keys.shape, prob.steps
    ((64, 32), (16, 32), (2, 2), 2)
  """

  def __init__(self, setup: ClassificationSetup, seeds: Sequence[int]) -> None:
    self.setup = setup
    x, y, xt, yt = tasks.load(
      setup.task, setup.n_train, setup.n_test, setup.data_seed, **setup.task_kwargs
    )
    self.x, self.y, self.xt, self.yt = map(jnp.asarray, (x, y, xt, yt))
    vocab = int(max(x.max(), xt.max())) + 1
    classes = int(max(y.max(), yt.max())) + 1
    circuit = ScoreCircuit.build() if setup.quantum_attention else None
    states = []
    for seed in seeds:
      model = TransformerClassifier(
        vocab, x.shape[1], classes, circuit=circuit, rngs=nnx.Rngs(seed), **setup.model
      )
      self.graphdef, params = nnx.split(model, nnx.Param)
      states.append(params)
    self.params: nnx.State = jax.tree.map(lambda *p: jnp.stack(p), *states)
    self.keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    self.steps = len(x) // setup.batch_size

  def loss(self, params: nnx.State, idx: jax.Array, key: jax.Array) -> jax.Array:
    logits = nnx.merge(self.graphdef, params)(self.x[idx], rngs=nnx.Rngs(dropout=key))
    return optax.softmax_cross_entropy_with_integer_labels(logits, self.y[idx]).mean()

  def batches(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Batch indices ``(steps, batch)`` and dropout keys ``(steps, 2)``."""
    key, shuffle = jax.random.split(key)
    order = jax.random.permutation(shuffle, len(self.y))
    idx = order[: self.steps * self.setup.batch_size].reshape(self.steps, -1)
    return idx, jax.random.split(key, self.steps)

  def accuracy(self, params: nnx.State) -> jax.Array:
    logits = nnx.merge(self.graphdef, params)(self.xt, deterministic=True)
    return jnp.mean(jnp.argmax(logits, -1) == self.yt)


def epoch_keys(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Seeds' keys ``(seeds, 2)`` -> (the keys to split next epoch, this epoch's).

  Each seed's key splits in two: the first carries on, the second drives the
  epoch (its data order and dropout, :meth:`Problem.batches`). Every harness
  draws its epochs' keys here from :attr:`Problem.keys`, so epoch ``e`` of a
  seed sees the same batches and dropout in all of them.
  """
  split = jax.vmap(jax.random.split)(keys)
  return split[:, 0], split[:, 1]


C = TypeVar("C")
O = TypeVar("O")


@dataclasses.dataclass(frozen=True)
class Epochs(Generic[C, O]):
  """What :func:`run_epochs` returns.

  Attributes:
    carry: the seeds' carry after the last epoch.
    outputs: per epoch, the epoch's outputs as NumPy arrays (seeds leading).
    compile_s: seconds to compile the epoch.
    epoch_s: wall seconds of each epoch, all seeds together.
  """

  carry: C
  outputs: list[O]
  compile_s: float
  epoch_s: list[float]


def run_epochs(
  epoch: Callable[[C, jax.Array], tuple[C, O]],
  carry: C,
  keys: jax.Array,
  epochs: int,
  on_epoch: Optional[Callable[[int], None]] = None,
) -> Epochs[C, O]:
  """Runs one seed's ``epoch(carry, key) -> (carry, outputs)`` for every seed
  at once (``jax.vmap``, compiled once), ``epochs`` times.

  Args:
    epoch: one seed's epoch; ``key`` is that epoch's key (:func:`epoch_keys`).
    carry: the seeds' carry, stacked on a leading axis.
    keys: the seeds' starting keys ``(seeds, 2)`` (:attr:`Problem.keys`).
    epochs: number of epochs.
    on_epoch: called with each finished epoch's index (from 0).
  """
  start = time.perf_counter()
  compiled = jax.jit(jax.vmap(epoch)).lower(carry, keys).compile()
  compile_s = time.perf_counter() - start
  outputs, epoch_s = [], []
  for e in range(epochs):
    keys, key = epoch_keys(keys)
    start = time.perf_counter()
    carry, out = compiled(carry, key)
    outputs.append(jax.tree.map(np.asarray, out))
    epoch_s.append(time.perf_counter() - start)
    if on_epoch is not None:
      on_epoch(e)
  return Epochs(carry, outputs, compile_s, epoch_s)


def train_seeds(
  setup: ClassificationSetup,
  opt_name: str,
  seeds: Sequence[int],
  on_epoch: Optional[Callable[[int], None]] = None,
) -> list[dict[str, Any]]:
  """Trains one run per seed (vmapped); returns their per-epoch histories.

  Args:
    setup: the task, model and training settings.
    opt_name: the optimizer's name, as :func:`optimizer` takes it.
    seeds: the seeds; seed ``s`` fixes the initial parameters, the data order
      and the dropout keys.
    on_epoch: called with each finished epoch's index (from 0).

  Returns:
    One history per seed, in order: a dict with ``optimizer``, ``attention``,
    ``seed``, ``task``, ``steps_per_epoch``, ``compile_s`` and, per epoch,
    ``train_loss`` (mean over the epoch's batches), ``test_acc`` and
    ``epoch_s`` (wall seconds, divided among the seeds).

  Examples:
    >>> from study.classification import ClassificationSetup, train_seeds
    >>> setup = ClassificationSetup(n_train=320, n_test=100, epochs=3)
    >>> runs = train_seeds(setup, "qsgd-0.5", [0, 1])  # doctest: +SKIP
    >>> len(runs), len(runs[0]["test_acc"])  # doctest: +SKIP
    (2, 3)
  """
  prob = Problem(setup, seeds)
  tx = optimizer(opt_name, setup.learning_rate, setup.weight_decay)
  Carry = tuple[nnx.State, optax.OptState]

  def epoch(carry: Carry, key: jax.Array) -> tuple[Carry, tuple[jax.Array, jax.Array]]:
    def step(carry: Carry, inputs: tuple[jax.Array, jax.Array]) -> tuple[Carry, jax.Array]:
      params, opt_state = carry
      idx, k = inputs
      loss, grads = jax.value_and_grad(prob.loss)(params, idx, k)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    carry, losses = jax.lax.scan(step, carry, prob.batches(key))
    return carry, (losses.mean(), prob.accuracy(carry[0]))

  carry = (prob.params, jax.vmap(tx.init)(prob.params))
  run = run_epochs(epoch, carry, prob.keys, setup.epochs, on_epoch)
  return [
    dict(
      optimizer=opt_name,
      attention=setup.attention,
      seed=seed,
      task=setup.task,
      steps_per_epoch=prob.steps,
      compile_s=run.compile_s,
      train_loss=[float(loss[i]) for loss, _ in run.outputs],
      test_acc=[float(acc[i]) for _, acc in run.outputs],
      epoch_s=[t / len(seeds) for t in run.epoch_s],
    )
    for i, seed in enumerate(seeds)
  ]


def train_classifier(
  setup: ClassificationSetup,
  opt_name: str,
  seed: int,
  on_epoch: Optional[Callable[[int], None]] = None,
) -> dict[str, Any]:
  """Trains one run; returns its per-epoch history and timings.

  Args:
    setup: the task, model and training settings.
    opt_name: the optimizer's name, as :func:`optimizer` takes it.
    seed: fixes the initial parameters, the data order and the dropout keys.
    on_epoch: called with each finished epoch's index (from 0).

  Returns:
    The run's history, as one entry of :func:`train_seeds`.

  Examples:
    >>> from study.classification import ClassificationSetup, train_classifier
    >>> setup = ClassificationSetup(n_train=320, n_test=100, epochs=3)
    >>> run = train_classifier(setup, "adam", 0)  # doctest: +SKIP
    >>> len(run["test_acc"])  # doctest: +SKIP
    3
  """
  return train_seeds(setup, opt_name, [seed], on_epoch)[0]


def epochs_to(acc_history: Sequence[float], threshold: float) -> Optional[int]:
  """First epoch (1-based) whose test accuracy reaches ``threshold``.

  Args:
    acc_history: test accuracy after each epoch.
    threshold: the accuracy to reach.

  Returns:
    The epoch, or ``None`` if no epoch reaches ``threshold``.

  Examples:
    >>> from study.classification import epochs_to
    >>> epochs_to([0.5, 0.85, 0.92, 0.95], 0.9)
    3
    >>> epochs_to([0.5], 0.9) is None
    True
  """
  hits = np.flatnonzero(np.asarray(acc_history) >= threshold)
  return int(hits[0]) + 1 if hits.size else None


def _group(runs: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
  """Runs keyed by (attention, optimizer)."""
  groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
  for r in runs:
    groups.setdefault((r["attention"], r["optimizer"]), []).append(r)
  return groups


def _epoch_time(run: dict[str, Any]) -> float:
  """Median seconds per epoch after the first (warm caches)."""
  return float(np.median(run["epoch_s"][1:] or run["epoch_s"]))


def summarize(
  runs: list[dict[str, Any]], baseline: str = "adam", threshold: float = 0.9
) -> list[dict[str, Any]]:
  """Summarizes runs per (attention, optimizer).

  Per (attention, optimizer): final accuracy, epochs to ``threshold``, time per
  epoch and its ratio to ``baseline``, and a paired comparison of final
  accuracy with ``baseline`` over the seeds both ran.

  Args:
    runs: histories as :func:`train_seeds` returns them.
    baseline: the optimizer compared against, within each attention.
    threshold: the test accuracy whose first epoch is counted.

  Returns:
    One dict per (attention, optimizer), e.g. ``final_acc_mean``,
    ``epochs_to_threshold_mean`` and ``epoch_time_ratio``; the paired
    comparison (``diff_vs_baseline``, ``wins``, ``p_value``,
    ``min_detectable``) where at least two seeds pair with ``baseline``.

  Examples:
    >>> from study.classification import summarize
    >>> runs = [
    ...   dict(attention="classical", optimizer=opt, seed=0, steps_per_epoch=10,
    ...        train_loss=[1.0, 0.5], test_acc=[0.8, acc], epoch_s=[2.0, 1.0])
    ...   for opt, acc in [("adam", 0.9), ("adamw", 0.95)]
    ... ]
    >>> [(r["optimizer"], r["final_acc_mean"], r["reached"]) for r in summarize(runs)]
    [('adam', 0.9, '1/1'), ('adamw', 0.95, '1/1')]
  """
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
        min_detectable=min_detectable_effect(diff),
      )
    base_t = [_epoch_time(r) for r in groups.get((attn, baseline), [])]
    row["epoch_time_ratio"] = epoch_s / float(np.median(base_t)) if base_t else None
    rows.append(row)
  return rows


def min_detectable_effect(diff: np.ndarray, alpha: float = 0.05, power: float = 0.8) -> float:
  """Smallest mean paired difference a two-sided paired t-test at ``alpha``
  detects with probability ``power``, given the spread of ``diff``:
  ``(t_{1-alpha/2} + t_{power}) * sd(diff) / sqrt(n)`` with ``n - 1`` dof."""
  from scipy import stats

  n = len(diff)
  t = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)
  return float(t * np.std(diff, ddof=1) / np.sqrt(n))


def markdown(rows: list[dict[str, Any]], threshold: float = 0.9) -> str:
  """The summary as a markdown table.

  Args:
    rows: the rows of :func:`summarize`.
    threshold: the threshold the rows were summarized with (for the headers).

  Returns:
    The table, one line per row after the two header lines.

  Examples:
    >>> from study.classification import markdown, summarize
    >>> runs = [
    ...   dict(attention="classical", optimizer=opt, seed=0, steps_per_epoch=10,
    ...        train_loss=[1.0, 0.5], test_acc=[0.8, acc], epoch_s=[2.0, 1.0])
    ...   for opt, acc in [("adam", 0.9), ("adamw", 0.95)]
    ... ]
    >>> print(markdown(summarize(runs)).splitlines()[2])
    | classical | adam | 1 | 90.00 +- 0.00 | 2.0 (1/1) | 20 | 1.00 | 1.00 |  |
  """
  pct = f"{threshold:.0%}"
  lines = [
    f"| attention | optimizer | seeds | final test acc | epochs to {pct} (reached) "
    f"| steps to {pct} | s/epoch | time ratio "
    "| diff vs adam (wins, paired t p, smallest detectable at 80% power) |",
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
      diff = (
        f"{100 * r['diff_vs_baseline']:+.2f} pts ({r['wins']}, p={r['p_value']:.2f}, "
        f"detectable {100 * r['min_detectable']:.2f})"
      )
    lines.append(
      f"| {r['attention']} | {r['optimizer']} | {r['seeds']} | "
      f"{100 * r['final_acc_mean']:.2f} +- {100 * r['final_acc_std']:.2f} | "
      f"{ep} ({r['reached']}) | {st} | {r['epoch_s']:.2f} | {ratio} | {diff} |"
    )
  return "\n".join(lines)


def plot(
  runs: list[dict[str, Any]], path: str, metrics: Sequence[str] = ("test_acc", "train_loss")
) -> None:
  """Curves per (attention, optimizer): mean over seeds, min-max shaded.

  One row of axes per attention, one column per metric, written to ``path``.

  Args:
    runs: histories as :func:`train_seeds` returns them.
    path: the image file to write.
    metrics: the per-epoch entries of a history to plot.

  Returns:
    None.

  Examples:
    >>> import os, tempfile
    >>> from study.classification import plot
    >>> runs = [
    ...   dict(attention="classical", optimizer=opt, seed=0, steps_per_epoch=10,
    ...        train_loss=[1.0, 0.5], test_acc=[0.8, acc], epoch_s=[2.0, 1.0])
    ...   for opt, acc in [("adam", 0.9), ("adamw", 0.95)]
    ... ]
    >>> with tempfile.TemporaryDirectory() as d:
    ...   plot(runs, os.path.join(d, "curves.png"))
    ...   print(os.listdir(d))
    ['curves.png']
  """
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
