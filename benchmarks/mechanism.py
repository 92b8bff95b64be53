"""Why qsgd barely changes training: the mechanism study (issue 10).

For each task, from the same init, data order and dropout keys per seed,
trains every variant beside Adam (see :mod:`qsgd_optax.experiments.mechanism`)
and records per epoch the relative parameter distance to Adam's trajectory,
the per-step relative update change at Adam's parameters, and test accuracy.
Variants: qsgd at lambda 0.1/0.5/1.0 with placements gradient and update,
lambda 0.1/0.5 with placement direction, and controls: the noise floor
(gradients times 1 + 1e-6 u), a random circuit-free modulation of the same size
(1 + 0.5 u, on the gradient and on Adam's direction), and optax.add_noise with
a variance matched to qsgd-0.5's perturbation.

Run:
  python benchmarks/mechanism.py                 # topics + digits, 3 seeds, 20 epochs
  python benchmarks/mechanism.py --quick
Writes benchmarks/results/mechanism.{json,md,png}.
"""

import argparse
import json
import os
import platform
import time

import jax
import numpy as np
from tqdm import tqdm

from qsgd_optax.experiments import ClassificationSetup
from qsgd_optax.experiments import mechanism as mech

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


def summarize(runs):
  """Per (task, variant): last-epoch distance, mean update change, accuracy
  difference to Adam (paired by seed), each as mean and [min, max] over seeds."""
  rows = []
  for task in dict.fromkeys(r["task"] for r in runs):
    floor = [r for r in runs if r["task"] == task and r["variant"] == "floor"]
    floor_change = max(np.mean(r["update_change"]) for r in floor)
    floor_dist = max(r["distance"][-1] for r in floor)
    for variant in dict.fromkeys(r["variant"] for r in runs if r["task"] == task):
      rs = [r for r in runs if r["task"] == task and r["variant"] == variant]
      dist = np.array([r["distance"][-1] for r in rs])
      change = np.array([np.mean(r["update_change"]) for r in rs])
      dacc = np.array([r["test_acc"][-1] - r["adam_test_acc"][-1] for r in rs])
      beyond = variant != "floor" and change.min() > 10 * floor_change
      rows.append(
        dict(
          task=task,
          variant=variant,
          label=rs[0].get("label", variant),
          seeds=len(rs),
          distance=[float(dist.mean()), float(dist.min()), float(dist.max())],
          update_change=[float(change.mean()), float(change.min()), float(change.max())],
          acc_diff=[float(dacc.mean()), float(dacc.min()), float(dacc.max())],
          adam_acc=float(np.mean([r["adam_test_acc"][-1] for r in rs])),
          update_beyond_floor=bool(beyond),
          trajectory_beyond_floor=bool(variant != "floor" and dist.min() > floor_dist),
        )
      )
  return rows


def markdown(rows, epochs):
  fmt = lambda v, f: f"{v[0]:{f}} [{v[1]:{f}}, {v[2]:{f}}]"
  lines = [
    f"| task | variant | update change per step | distance to Adam after {epochs} epochs "
    "| test acc - Adam's (pts) | verdict |",
    "| --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    if r["variant"] == "floor":
      verdict = "noise floor"
    elif r["update_beyond_floor"]:
      verdict = "moves the update beyond the floor"
    else:
      verdict = "indistinguishable from the floor"
    acc = [100 * v for v in r["acc_diff"]]
    lines.append(
      f"| {r['task']} | {r['label']} | {fmt(r['update_change'], '.1e')} | "
      f"{fmt(r['distance'], '.3f')} | {fmt(acc, '+.2f')} | {verdict} |"
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


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--tasks", nargs="+", default=["ordered", "digits"])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--variants", nargs="+", default=VARIANTS)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  if args.quick:
    args.seeds, args.epochs, args.tasks = 2, 2, args.tasks[:1]
  os.makedirs(args.out, exist_ok=True)
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
  rows = summarize(runs)
  meta = dict(
    command="python benchmarks/mechanism.py",
    machine=f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    seeds=args.seeds,
    epochs=args.epochs,
  )
  with open(os.path.join(args.out, "mechanism.json"), "w") as f:
    json.dump(dict(meta=meta, summary=rows, runs=runs), f)
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; {args.seeds} seeds x "
    f"{args.epochs} epochs; mean [min, max] over seeds.\n\n" + markdown(rows, args.epochs)
  )
  with open(os.path.join(args.out, "mechanism.md"), "w") as f:
    f.write(md + "\n")
  plot(runs, os.path.join(args.out, "mechanism.png"))
  print(md)


if __name__ == "__main__":
  main()
