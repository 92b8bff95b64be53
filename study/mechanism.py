"""How far does an optimizer move Adam's training? The mechanism study.

From one init, data order and dropout keys per seed, :func:`trace` trains a
variant and the Adam reference side by side (both see the same batches and
dropout keys) and records, every epoch:

* ``distance``: ``||theta_x - theta_adam|| / ||theta_adam - theta_0||``, how
  far the variant's trajectory is from Adam's, relative to how far Adam went;
* ``update_change``: the mean over the epoch's steps of
  ``||u_x - u_adam|| / ||u_adam||`` where ``u_x`` is the variant's update *at
  Adam's parameters and gradient* (its state shadows Adam's trajectory, as in
  :func:`qsgd_optax.update_change`), so chaotic divergence of the
  trajectories does not enter;
* ``test_acc`` of both.

Run from the repository's root (results under ``study/results/``, ``--out``):

  python -m study.mechanism                 # ordered + digits, 3 seeds, 20 epochs
  python -m study.mechanism --quick

Every variant trains beside Adam: ``qsgd`` at lambda 0.1/0.5/1.0 with the placements gradient
and update, lambda 0.1/0.5 with the placement direction, and the controls: the noise floor
(gradients times 1 + 1e-6 u), a random circuit-free modulation of the same size (1 + 0.5 u, on
the gradient and on Adam's direction), and ``optax.add_noise`` with a variance matched to
qsgd-0.5's perturbation. The table gives per task and variant the update change, the distance
at the first, middle and last epoch and the accuracy difference to Adam, with verdicts against
the noise floor. Writes ``mechanism-<platform>-<tasks>.{json,md,png}`` (or ``--name``).

``--scope`` asks where ``qsgd``'s trajectory leaves the noise floor: one factor at a time
around one task's set-up (digits by default: lr 1e-3, dropout 0.1, no weight decay, width
64/128, batch 32), the cells ``--cells``: learning rate divided and multiplied by 3, dropout 0,
twice the width (the base already has no weight decay, so "weight decay 0" is the base cell).
Each cell trains the floor, ``qsgd-0.5``, ``qsgd-0.5-direction`` and ``rand-0.5`` (or
``--variants``) beside Adam; the base cell's runs are read from ``--base-from`` (the trace run
of the same set-up, seeds and code; ``""`` trains it again). Per cell: each variant's final
distance to Adam's trajectory and its ratio to the floor's, the paired accuracy difference with
the smallest effect the seeds can detect, and the floor's growth rate ``log(d_e / d_{e-1})``
per epoch, its largest value over epochs 2..E and its mean over the second half of training (a
Lyapunov-like exponent of the chaotic divergence). A finished cell is kept in the JSON and
skipped when the command is run again (about 90 minutes on 2 cores in all). Writes
``mechanism-<platform>-scope.{json,md,png}``.

  python -m study.mechanism --scope
  python -m study.mechanism --scope --quick --out /tmp/scope
  python -m study.mechanism --cells "width x2" --name scope-a &     # two processes, then
  python -m study.mechanism --cells "lr/3" "lr*3" "dropout 0" --name scope-b
  python -m study.mechanism --scope --merge scope-a scope-b         # merged
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import jax
import numpy as np
import optax

from qsgd_optax import relative_change
from study._results import RESULTS, save
from study.classification import (
  ClassificationSetup,
  Problem,
  min_detectable_effect,
  optimizer,
  run_epochs,
)

Run = dict[str, Any]


def matched_noise_eta(setup: ClassificationSetup, weight: float, seed: int = 0) -> float:
  """``optax.add_noise`` variance matching ``qsgd``'s perturbation at the start.

  ``weight * sin(pi * theta) * g`` has RMS about ``weight * rms(g) / sqrt(2)``
  (``sin`` of spread-out angles has RMS ``1/sqrt(2)``); the variance returned
  makes Gaussian noise of that RMS with the first batch's gradient.
  """
  prob = Problem(setup, [seed])
  params = jax.tree.map(lambda p: p[0], prob.params)
  idx, keys = prob.batches(prob.keys[0])
  g = jax.jit(jax.grad(prob.loss))(params, idx[0], keys[0])  # Compiled: op by op is slower.
  rms = optax.tree.norm(g) / np.sqrt(optax.tree.size(g))
  return float((weight * rms / np.sqrt(2)) ** 2)


def trace(
  setup: ClassificationSetup,
  variant: str,
  seeds: Sequence[int],
  on_epoch: Optional[Callable[[int], None]] = None,
) -> list[dict[str, Any]]:
  """Trains ``variant`` beside Adam; per-epoch distance, update change, accuracy.

  Seeds' keys, batches and dropout are :func:`~study.train_seeds`'s
  (the same loop, :func:`~study.classification.run_epochs`).
  """
  prob = Problem(setup, seeds)
  base = optimizer("adamw", setup.learning_rate, setup.weight_decay)
  tx = optimizer(variant, setup.learning_rate, setup.weight_decay)
  # Adam's params and state, the variant's, the variant's shadowing Adam's.
  State = tuple[Any, Any, Any, Any, Any]
  Carry = tuple[State, Any]  # With the initial params, to measure distances from.

  def epoch(carry: Carry, key: jax.Array) -> tuple[Carry, tuple[jax.Array, ...]]:
    def step(state: State, inputs: tuple[jax.Array, jax.Array]) -> tuple[State, jax.Array]:
      pa, sa, px, sx, sh = state
      idx, k = inputs
      ga = jax.grad(prob.loss)(pa, idx, k)
      gx = jax.grad(prob.loss)(px, idx, k)
      ua, sa = base.update(ga, sa, pa)
      ux, sx = tx.update(gx, sx, px)
      ush, sh = tx.update(ga, sh, pa)
      change = relative_change(ush, ua)
      pa, px = optax.apply_updates(pa, ua), optax.apply_updates(px, ux)
      return (pa, sa, px, sx, sh), change

    state, theta0 = carry
    state, change = jax.lax.scan(step, state, prob.batches(key))
    pa, px = state[0], state[2]
    distance = optax.tree.norm(optax.tree.sub(px, pa)) / optax.tree.norm(optax.tree.sub(pa, theta0))
    return (state, theta0), (distance, change.mean(), prob.accuracy(px), prob.accuracy(pa))

  p0 = prob.params
  state = (p0, jax.vmap(base.init)(p0), p0, jax.vmap(tx.init)(p0), jax.vmap(tx.init)(p0))
  run = run_epochs(epoch, (state, p0), prob.keys, setup.epochs, on_epoch)
  names = ("distance", "update_change", "test_acc", "adam_test_acc")
  return [
    dict(
      variant=variant,
      seed=seed,
      task=setup.task,
      **{n: [float(out[j][i]) for out in run.outputs] for j, n in enumerate(names)},
    )
    for i, seed in enumerate(seeds)
  ]


# ---------------------------------------------------------------- the command line

VARIANTS = [
  "floor",
  "qsgd-0.1",
  "qsgd-0.5",
  "qsgd-1.0",
  "qsgd-0.1-update",
  "qsgd-0.5-update",
  "qsgd-1.0-update",
  "qsgd-0.1-direction",
  "qsgd-0.5-direction",
  "rand-0.5",
  "rand-0.5-direction",
  "addnoise",
]
SCOPE_VARIANTS = ["floor", "qsgd-0.5", "qsgd-0.5-direction", "rand-0.5"]
# One factor at a time around the set-up (ClassificationSetup's defaults).
CELLS: dict[str, dict[str, Any]] = {
  "base": {},
  "lr/3": dict(learning_rate=1e-3 / 3),
  "lr*3": dict(learning_rate=3e-3),
  "dropout 0": dict(model=dict(dropout=0.0)),
  "width x2": dict(model=dict(dropout=0.1, d_model=128, d_ff=256)),
}
BASE: dict[str, Any] = dict(learning_rate=1e-3, weight_decay=0.0, model=dict(dropout=0.1))


def traced(
  setup: ClassificationSetup, variant: str, seeds: Sequence[int], on_epoch: Callable[[int], None]
) -> list[Run]:
  """:func:`trace` of a variant of the command line (``addnoise``: the variance matched to
  qsgd-0.5's), each run labelled."""
  name, label = variant, variant
  if variant == "addnoise":
    eta = matched_noise_eta(setup, 0.5)
    name, label = f"addnoise-{eta:.3g}", f"add_noise (eta={eta:.2g}, matches 0.5)"
  return [dict(r, variant=variant, label=label) for r in trace(setup, name, seeds, on_epoch)]


def checkpoints(epochs: int) -> list[int]:
  """The epochs whose distances the table shows: the first, the middle, the last."""
  return sorted({1, max(1, epochs // 2), epochs})


def spread(v: Sequence[float] | np.ndarray) -> list[float]:
  """Mean, min and max of per-seed values."""
  return [float(np.mean(v)), float(np.min(v)), float(np.max(v))]


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
  """Per (task, variant): mean update change, distance to Adam at the
  checkpoint epochs, last-epoch accuracy difference to Adam (paired by seed),
  each as mean and [min, max] over seeds, and verdicts against the noise floor:
  the update moves beyond it when every seed's change exceeds 10x the floor's
  largest; the trajectory at an epoch when every seed's distance exceeds the
  floor's largest."""
  rows = []
  for task in dict.fromkeys(r["task"] for r in runs):
    floor = [r for r in runs if r["task"] == task and r["variant"] == "floor"]
    floor_change = max(np.mean(r["update_change"]) for r in floor)
    epochs = checkpoints(len(floor[0]["distance"]))
    floor_distance = {e: max(r["distance"][e - 1] for r in floor) for e in epochs}
    for variant in dict.fromkeys(r["variant"] for r in runs if r["task"] == task):
      rs = [r for r in runs if r["task"] == task and r["variant"] == variant]
      change = [float(np.mean(r["update_change"])) for r in rs]
      distance = {e: spread([r["distance"][e - 1] for r in rs]) for e in epochs}
      rows.append(
        dict(
          task=task,
          variant=variant,
          label=rs[0].get("label", variant),
          seeds=len(rs),
          update_change=spread(change),
          distance=distance,
          acc_diff=spread([r["test_acc"][-1] - r["adam_test_acc"][-1] for r in rs]),
          adam_acc=float(np.mean([r["adam_test_acc"][-1] for r in rs])),
          update_beyond_floor=bool(variant != "floor" and min(change) > 10 * floor_change),
          trajectory_beyond_floor={
            e: bool(variant != "floor" and distance[e][1] > floor_distance[e]) for e in epochs
          },
        )
      )
  return rows


def verdict(row: dict[str, Any]) -> str:
  if row["variant"] == "floor":
    return "noise floor"
  update = "beyond" if row["update_beyond_floor"] else "inside"
  beyond = [e for e, b in row["trajectory_beyond_floor"].items() if b]
  inside = [e for e, b in row["trajectory_beyond_floor"].items() if not b]
  trajectory = "; ".join(
    f"{word} at epoch {', '.join(map(str, es))}"
    for word, es in (("beyond", beyond), ("inside", inside))
    if es
  )
  return f"update {update} the floor; trajectory {trajectory}"


def _fmt(v: Sequence[float], f: str) -> str:
  return f"{v[0]:{f}} [{v[1]:{f}}, {v[2]:{f}}]"


def markdown(rows: list[dict[str, Any]]) -> str:
  epochs = list(rows[0]["distance"])
  lines = [
    "| task | variant | update change per step | "
    + " | ".join(f"distance after {e} epoch{'s' * (e > 1)}" for e in epochs)
    + " | test acc - Adam's (pts) | verdict (every seed vs the floor's extreme) |",
    "| --- " * (5 + len(epochs)) + "|",
  ]
  for r in rows:
    acc = [100 * v for v in r["acc_diff"]]
    distances = " | ".join(_fmt(r["distance"][e], ".3f") for e in epochs)
    lines.append(
      f"| {r['task']} | {r['label']} | {_fmt(r['update_change'], '.1e')} | {distances} | "
      f"{_fmt(acc, '+.2f')} | {verdict(r)} |"
    )
  return "\n".join(lines)


def plot(runs: list[Run], path: str) -> None:
  """Per task: update change, distance and accuracy per epoch of every variant."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  tasks = list(dict.fromkeys(r["task"] for r in runs))
  metrics = ("update_change", "distance", "test_acc")
  fig, axes = plt.subplots(len(tasks), 3, figsize=(17, 4.2 * len(tasks)), squeeze=False)
  for row, task in zip(axes, tasks):
    for ax, metric in zip(row, metrics):
      for variant in dict.fromkeys(r["variant"] for r in runs if r["task"] == task):
        rs = [r for r in runs if r["task"] == task and r["variant"] == variant]
        curves = np.array([r[metric] for r in rs])
        x = np.arange(1, curves.shape[1] + 1)
        style = ":" if variant in ("floor", "addnoise") or variant.startswith("rand") else "-"
        ax.plot(x, curves.mean(0), style, label=rs[0].get("label", variant))
        ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.12)
      if metric != "test_acc":
        ax.set_yscale("log")
      ax.set_title(f"{task}: {metric.replace('_', ' ')}")
      ax.set_xlabel("epoch")
      ax.grid(alpha=0.3)
    row[0].legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def report(meta: dict[str, Any], runs: list[Run], out: str, name: str) -> None:
  """Summary, markdown, JSON and plot of a finished trace run."""
  rows = summarize(runs)
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; {meta['seeds']} seeds x "
    f"{meta['epochs']} epochs; mean [min, max] over seeds.\n\n" + markdown(rows)
  )
  save(out, name, dict(meta=meta, summary=rows, runs=runs), md, indent=None)
  plot(runs, os.path.join(out, f"{name}.png"))


# ---------------------------------------------------------------- the scope sweep


def growth(distance: Sequence[float]) -> tuple[float, float]:
  """Per-epoch log growth of a distance curve: largest (epochs 2..E) and the
  mean over the second half."""
  rate = np.diff(np.log(np.asarray(distance)))
  return float(rate.max()), float(rate[len(rate) // 2 :].mean())


def scope_summarize(runs: list[Run]) -> list[dict[str, Any]]:
  """Rows per (cell, variant): mean [min, max] over seeds of the final
  distance, its ratio to the floor's (paired by seed), the accuracy
  difference to Adam and its smallest detectable effect; the floor's rows
  carry its growth rates."""
  rows = []
  for cell in dict.fromkeys(r["cell"] for r in runs):
    floor = {r["seed"]: r for r in runs if r["cell"] == cell and r["variant"] == "floor"}
    floor_max = max(r["distance"][-1] for r in floor.values())
    for variant in dict.fromkeys(r["variant"] for r in runs if r["cell"] == cell):
      rs = [r for r in runs if r["cell"] == cell and r["variant"] == variant]
      final = [r["distance"][-1] for r in rs]
      diff = np.array([r["test_acc"][-1] - r["adam_test_acc"][-1] for r in rs])
      rates = np.array([growth(r["distance"]) for r in rs])
      rows.append(
        dict(
          cell=cell,
          variant=variant,
          seeds=len(rs),
          adam_acc=float(np.mean([r["adam_test_acc"][-1] for r in rs])),
          distance=spread(final),
          ratio=spread([r["distance"][-1] / floor[r["seed"]]["distance"][-1] for r in rs]),
          beyond_floor=bool(variant != "floor" and min(final) > floor_max),
          acc_diff=spread(diff),
          min_detectable=min_detectable_effect(diff) if len(rs) > 1 else None,
          max_growth=spread(rates[:, 0]),
          late_growth=spread(rates[:, 1]),
        )
      )
  return rows


def scope_markdown(rows: list[dict[str, Any]]) -> str:
  lines = [
    "| cell | Adam acc | variant | final distance | / floor's | beyond the floor (every seed) "
    "| acc - Adam's (pts) | detectable (pts) | growth per epoch: largest, late mean |",
    "| --- " * 9 + "|",
  ]
  for r in rows:
    acc = [100 * v for v in r["acc_diff"]]
    mde = "" if r["min_detectable"] is None else f"{100 * r['min_detectable']:.2f}"
    rate = _fmt(r["max_growth"], ".2f") + "; " + _fmt(r["late_growth"], ".2f")
    beyond = "floor" if r["variant"] == "floor" else r["beyond_floor"]
    lines.append(
      f"| {r['cell']} | {100 * r['adam_acc']:.1f} | {r['variant']} | "
      f"{_fmt(r['distance'], '.3f')} | {_fmt(r['ratio'], '.2f')} | {beyond} "
      f"| {_fmt(acc, '+.2f')} | {mde} | {rate} |"
    )
  return "\n".join(lines)


def scope_plot(runs: list[Run], path: str) -> None:
  """Each variant's final distance against the floor's (one point per cell and seed), and the
  floor's distance per epoch."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  cells = list(dict.fromkeys(r["cell"] for r in runs))
  fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
  markers = dict(zip(SCOPE_VARIANTS[1:], "os^"))
  for i, cell in enumerate(cells):
    floor = {r["seed"]: r for r in runs if r["cell"] == cell and r["variant"] == "floor"}
    for r in runs:
      if r["cell"] != cell or r["variant"] == "floor":
        continue
      ax.scatter(
        floor[r["seed"]]["distance"][-1],
        r["distance"][-1],
        color=f"C{i}",
        marker=markers.get(r["variant"], "x"),
        label=f"{cell}: {r['variant']}" if r["seed"] == min(floor) else None,
      )
    for r in floor.values():
      ax2.plot(np.arange(1, len(r["distance"]) + 1), r["distance"], color=f"C{i}", alpha=0.7)
    ax2.plot([], [], color=f"C{i}", label=cell)
  lim = [1e-2, 1.0]
  ax.plot(lim, lim, "k:", lw=1, label="= floor")
  ax.set(xscale="log", yscale="log", xlabel="noise floor's final distance to Adam")
  ax.set(ylabel="variant's final distance to Adam", title="one point per cell and seed")
  ax.legend(fontsize=6, ncol=2)
  ax2.set(yscale="log", xlabel="epoch", ylabel="distance to Adam", title="the noise floor's growth")
  ax2.legend(fontsize=7)
  for a in (ax, ax2):
    a.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def scope_report(meta: dict[str, Any], runs: list[Run], out: str, name: str) -> None:
  """Markdown, JSON and plot of the scope sweep's runs so far."""
  base = f" Base cell from {meta['base_from']}." if meta.get("base_from") else ""
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; {meta.get('task', 'digits')}, "
    f"{meta['seeds']} paired seeds x {meta['epochs']} epochs; mean [min, max] over seeds; "
    "distance = ||theta - theta_adam|| / ||theta_adam - theta_0|| after the last epoch; "
    "detectable = smallest paired accuracy effect a t-test detects at 80% power."
    + base
    + "\n\n"
    + scope_markdown(scope_summarize(runs))
  )
  save(out, name, dict(meta=meta, runs=runs), md, indent=None)
  scope_plot(runs, os.path.join(out, f"{name}.png"))


def load(path: str) -> tuple[dict[str, Any], list[Run]]:
  """``(meta, runs)`` of a stored result."""
  with open(path) as f:
    stored = json.load(f)
  return stored["meta"], stored["runs"]


def run_scope(args: argparse.Namespace, meta: dict[str, Any]) -> None:
  """The scope sweep of the command line, reported after every cell."""
  task, path = args.tasks[0], os.path.join(args.out, f"{args.name}.json")
  meta["task"] = task
  runs: list[Run] = []
  if os.path.exists(path):
    stored_meta, stored = load(path)
    if (stored_meta["seeds"], stored_meta["epochs"]) == (args.seeds, args.epochs):
      runs = [r for r in stored if r["cell"] in args.cells]
  if "base" in args.cells and args.base_from and not any(r["cell"] == "base" for r in runs):
    base_meta, base = load(args.base_from)
    if (base_meta["seeds"], base_meta["epochs"]) == (args.seeds, args.epochs):
      runs += [
        dict(r, cell="base") for r in base if r["variant"] in args.variants and r["task"] == task
      ]
      root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
      meta["base_from"] = f"{os.path.relpath(args.base_from, root)} ({base_meta['date']})"
  from tqdm import tqdm

  done = {r["cell"] for r in runs}
  todo = [c for c in args.cells if c not in done]
  with tqdm(total=len(todo) * len(args.variants) * args.epochs, unit="epoch") as bar:
    for cell in todo:
      setup = ClassificationSetup(task=task, epochs=args.epochs, **{**BASE, **CELLS[cell]})
      for variant in args.variants:
        bar.set_description(f"{cell}: {variant}")
        seeds = list(range(args.seeds))
        runs += [dict(r, cell=cell) for r in traced(setup, variant, seeds, lambda _: bar.update())]
      scope_report(meta, runs, args.out, args.name)  # after every cell: a stop loses one at most
  order = {c: i for i, c in enumerate(args.cells)}
  scope_report(meta, sorted(runs, key=lambda r: order[r["cell"]]), args.out, args.name)


def run(args: argparse.Namespace) -> list[Run]:
  """Every task and variant of the command line, traced beside Adam."""
  from tqdm import tqdm

  runs = []
  seeds = list(range(args.seeds))
  total = len(args.tasks) * len(args.variants) * args.epochs
  with tqdm(total=total, unit="epoch") as bar:
    for task in args.tasks:
      setup = ClassificationSetup(task=task, epochs=args.epochs)
      for variant in args.variants:
        bar.set_description(f"{task} {variant}")
        runs += traced(setup, variant, seeds, lambda _: bar.update())
  return runs


def main(argv: Optional[Sequence[str]] = None) -> None:
  """The command line (see the module doc)."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--tasks", nargs="+", help="default: ordered digits (--scope: digits)")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--variants", nargs="+", help="default: every variant (--scope: four)")
  parser.add_argument("--quick", action="store_true", help="2 seeds, 2 epochs, 1 task or 2 cells")
  parser.add_argument("--out", default=RESULTS)
  parser.add_argument(
    "--name", help="file stem of the outputs (default: mechanism-<platform>-<tasks>, -scope)"
  )
  parser.add_argument(
    "--rewrite", action="store_true", help="only redo table and plot from <name>.json's runs"
  )
  parser.add_argument("--scope", action="store_true", help="one factor at a time (module doc)")
  parser.add_argument("--cells", nargs="+", choices=list(CELLS), help="the scope's cells (all)")
  parser.add_argument(
    "--base-from",
    default=os.path.join(RESULTS, "mechanism-cpu-digits.json"),
    help='the scope\'s base cell: a trace run of the same task ("" to train it)',
  )
  parser.add_argument("--merge", nargs="+", help="only merge these result names into --name")
  args = parser.parse_args(argv)
  args.scope = args.scope or bool(args.cells)
  args.cells = args.cells or list(CELLS)
  args.tasks = args.tasks or (["digits"] if args.scope else ["ordered", "digits"])
  args.variants = args.variants or (SCOPE_VARIANTS if args.scope else VARIANTS)
  if args.scope and len(args.tasks) > 1:
    parser.error("--scope sweeps one task's set-up: give one --tasks")
  if args.quick:
    args.seeds, args.epochs, args.tasks = 2, 2, args.tasks[:1]
    args.cells = args.cells[:2]
  platform_name = jax.devices()[0].platform
  kind = "scope" if args.scope else "-".join(args.tasks)
  args.name = args.name or f"mechanism-{platform_name}-{kind}"
  write = scope_report if args.scope else report
  if args.rewrite or args.merge:
    merged = [load(os.path.join(args.out, f"{n}.json")) for n in args.merge or [args.name]]
    runs = [r for _, rs in merged for r in rs]
    if args.scope:
      order = {c: i for i, c in enumerate(CELLS)}
      runs = sorted(runs, key=lambda r: order[r["cell"]])
    meta = merged[0][0]
    if args.merge:
      meta = dict(meta, command=[m["command"] for m, _ in merged])
    write(meta, runs, args.out, args.name)
    return
  meta = dict(
    command=" ".join(["python -m study.mechanism", *(sys.argv[1:] if argv is None else argv)]),
    machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform_name}",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    seeds=args.seeds,
    epochs=args.epochs,
  )
  if args.scope:
    run_scope(args, meta)
  else:
    report(meta, run(args), args.out, args.name)


__all__ = ["main", "matched_noise_eta", "trace"]

if __name__ == "__main__":
  main()
