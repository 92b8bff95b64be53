"""Why qsgd barely changes training: the mechanism study.

For each task, from the same init, data order and dropout keys per seed,
trains every variant beside Adam (see :mod:`study.mechanism`)
and records per epoch the relative parameter distance to Adam's trajectory,
the per-step relative update change at Adam's parameters, and test accuracy.
Variants: qsgd at lambda 0.1/0.5/1.0 with placements gradient and update,
lambda 0.1/0.5 with placement direction, and controls: the noise floor
(gradients times 1 + 1e-6 u), a random circuit-free modulation of the same size
(1 + 0.5 u, on the gradient and on Adam's direction), and optax.add_noise with
a variance matched to qsgd-0.5's perturbation.

Run:
  python benchmarks/mechanism.py                 # ordered + digits, 3 seeds, 20 epochs
  python benchmarks/mechanism.py --quick
Writes benchmarks/results/mechanism-<platform>-<tasks>.{json,md,png} (or --name).
"""

import argparse
import json
import os
import platform
import sys
import time

import jax
import numpy as np
from _results import save
from tqdm import tqdm

from study import ClassificationSetup
from study import mechanism as mech

HERE = os.path.dirname(os.path.abspath(__file__))
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


def checkpoints(epochs):
  """The epochs whose distances the table shows: the first, the middle, the last."""
  return sorted({1, max(1, epochs // 2), epochs})


def spread(v):
  """Mean, min and max of per-seed values."""
  return [float(np.mean(v)), float(np.min(v)), float(np.max(v))]


def summarize(runs):
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
      change = [np.mean(r["update_change"]) for r in rs]
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


def verdict(row):
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


def markdown(rows):
  fmt = lambda v, f: f"{v[0]:{f}} [{v[1]:{f}}, {v[2]:{f}}]"
  epochs = list(rows[0]["distance"])
  lines = [
    "| task | variant | update change per step | "
    + " | ".join(f"distance after {e} epoch{'s' * (e > 1)}" for e in epochs)
    + " | test acc - Adam's (pts) | verdict (every seed vs the floor's extreme) |",
    "| --- " * (5 + len(epochs)) + "|",
  ]
  for r in rows:
    acc = [100 * v for v in r["acc_diff"]]
    distances = " | ".join(fmt(r["distance"][e], ".3f") for e in epochs)
    lines.append(
      f"| {r['task']} | {r['label']} | {fmt(r['update_change'], '.1e')} | {distances} | "
      f"{fmt(acc, '+.2f')} | {verdict(r)} |"
    )
  return "\n".join(lines)


def plot(runs, path):
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


def report(meta, runs, out, name):
  """Summary, markdown, JSON and plot of a finished run."""
  rows = summarize(runs)
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; {meta['seeds']} seeds x "
    f"{meta['epochs']} epochs; mean [min, max] over seeds.\n\n" + markdown(rows)
  )
  save(out, name, dict(meta=meta, summary=rows, runs=runs), md, indent=None)
  plot(runs, os.path.join(out, f"{name}.png"))


def run(args):
  runs = []
  seeds = list(range(args.seeds))
  total = len(args.tasks) * len(args.variants) * args.epochs
  with tqdm(total=total, unit="epoch") as bar:
    for task in args.tasks:
      setup = ClassificationSetup(task=task, epochs=args.epochs)
      for variant in args.variants:
        name, label = variant, variant
        if variant == "addnoise":
          eta = mech.matched_noise_eta(setup, 0.5)
          name, label = f"addnoise-{eta:.3g}", f"add_noise (eta={eta:.2g}, matches 0.5)"
        bar.set_description(f"{task} {label}")
        for r in mech.trace(setup, name, seeds, on_epoch=lambda _: bar.update()):
          r["variant"], r["label"] = variant, label
          runs.append(r)
  return runs


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--tasks", nargs="+", default=["ordered", "digits"])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--variants", nargs="+", default=VARIANTS)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument(
    "--name", help="file stem of the outputs (default: mechanism-<platform>-<tasks>)"
  )
  parser.add_argument(
    "--rewrite", action="store_true", help="only redo table and plot from <name>.json's runs"
  )
  args = parser.parse_args()
  if args.quick:
    args.seeds, args.epochs, args.tasks = 2, 2, args.tasks[:1]
  args.name = args.name or f"mechanism-{jax.devices()[0].platform}-" + "-".join(args.tasks)
  if args.rewrite:
    with open(os.path.join(args.out, f"{args.name}.json")) as f:
      stored = json.load(f)
    report(stored["meta"], stored["runs"], args.out, args.name)
    return
  meta = dict(
    command=" ".join(["python benchmarks/mechanism.py", *sys.argv[1:]]),
    machine=f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    seeds=args.seeds,
    epochs=args.epochs,
  )
  report(meta, run(args), args.out, args.name)


if __name__ == "__main__":
  main()
