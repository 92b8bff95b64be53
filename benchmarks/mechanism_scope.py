"""Where does qsgd's trajectory leave the noise floor? The scope sweep.

One factor at a time around the digits set-up of ``benchmarks/mechanism.py``
(lr 1e-3, dropout 0.1, no weight decay, width 64/128, batch 32): learning rate
divided and multiplied by 3, dropout 0, twice the width. (The base already has
no weight decay, so "weight decay 0" is the base cell.) Each cell trains Adam
and, beside it from the same init, data order and dropout keys, the noise
floor, ``qsgd-0.5``, ``qsgd-0.5-direction`` and ``rand-0.5``
(:func:`study.mechanism.trace`). The base cell's runs are read
from ``benchmarks/results/mechanism-cpu-digits.json`` (the same set-up, seeds and
code; ``--base-from ""`` trains it again).

Per cell: each variant's final distance to Adam's trajectory and its ratio to
the floor's, the paired accuracy difference with the smallest effect the seeds
can detect, and the floor's growth rate: ``log(d_e / d_{e-1})`` per epoch, its
largest value over epochs 2..E and its mean over the second half of training
(a Lyapunov-like exponent of the chaotic divergence).

Run (about 90 minutes on 2 cores; a finished cell is kept in the JSON and
skipped when the command is run again):
  python benchmarks/mechanism_scope.py
  python benchmarks/mechanism_scope.py --quick --out /tmp/scope
Or in two processes (each uses about one core), then merged:
  python benchmarks/mechanism_scope.py --cells "width x2" --name scope-a &
  python benchmarks/mechanism_scope.py --cells "lr/3" "lr*3" "dropout 0" --name scope-b
  python benchmarks/mechanism_scope.py --merge scope-a scope-b
Writes benchmarks/results/mechanism_scope-<platform>.{json,md,png}.
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
from mechanism import spread
from tqdm import tqdm

from study import ClassificationSetup
from study import mechanism as mech
from study.classification import min_detectable_effect

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ["floor", "qsgd-0.5", "qsgd-0.5-direction", "rand-0.5"]
BASE = dict(learning_rate=1e-3, weight_decay=0.0, model=dict(dropout=0.1))
CELLS = {
  "base": {},
  "lr/3": dict(learning_rate=1e-3 / 3),
  "lr*3": dict(learning_rate=3e-3),
  "dropout 0": dict(model=dict(dropout=0.0)),
  "width x2": dict(model=dict(dropout=0.1, d_model=128, d_ff=256)),
}


def setup_of(cell, epochs):
  return ClassificationSetup(task="digits", epochs=epochs, **{**BASE, **CELLS[cell]})


def growth(distance):
  """Per-epoch log growth of a distance curve: largest (epochs 2..E) and the
  mean over the second half."""
  rate = np.diff(np.log(np.asarray(distance)))
  return float(rate.max()), float(rate[len(rate) // 2 :].mean())


def summarize(runs):
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


def markdown(rows):
  fmt = lambda v, f: f"{v[0]:{f}} [{v[1]:{f}}, {v[2]:{f}}]"
  lines = [
    "| cell | Adam acc | variant | final distance | / floor's | beyond the floor (every seed) "
    "| acc - Adam's (pts) | detectable (pts) | growth per epoch: largest, late mean |",
    "| --- " * 9 + "|",
  ]
  for r in rows:
    acc = [100 * v for v in r["acc_diff"]]
    mde = "" if r["min_detectable"] is None else f"{100 * r['min_detectable']:.2f}"
    rate = fmt(r["max_growth"], ".2f") + "; " + fmt(r["late_growth"], ".2f")
    lines.append(
      f"| {r['cell']} | {100 * r['adam_acc']:.1f} | {r['variant']} | {fmt(r['distance'], '.3f')} "
      f"| {fmt(r['ratio'], '.2f')} | {'floor' if r['variant'] == 'floor' else r['beyond_floor']} "
      f"| {fmt(acc, '+.2f')} | {mde} | {rate} |"
    )
  return "\n".join(lines)


def plot(runs, path):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  cells = list(dict.fromkeys(r["cell"] for r in runs))
  fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
  markers = dict(zip(VARIANTS[1:], "os^"))
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


def load(path):
  """``(meta, runs)`` of a stored result."""
  with open(path) as f:
    stored = json.load(f)
  return stored["meta"], stored["runs"]


def report(meta, runs, out, name):
  base = f" Base cell from {meta['base_from']}." if meta.get("base_from") else ""
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; digits, {meta['seeds']} paired "
    f"seeds x {meta['epochs']} epochs; mean [min, max] over seeds; distance = "
    "||theta - theta_adam|| / ||theta_adam - theta_0|| after the last epoch; detectable = "
    "smallest paired accuracy effect a t-test detects at 80% power."
    + base
    + "\n\n"
    + markdown(summarize(runs))
  )
  save(out, name, dict(meta=meta, runs=runs), md, indent=None)
  plot(runs, os.path.join(out, f"{name}.png"))


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--quick", action="store_true", help="2 cells, 2 seeds, 2 epochs")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument(
    "--name", help="file stem of the outputs (default: mechanism_scope-<platform>)"
  )
  parser.add_argument(
    "--base-from",
    default=os.path.join(HERE, "results", "mechanism-cpu-digits.json"),
    help='the base cell from a benchmarks/mechanism.py digits run ("" to train it)',
  )
  parser.add_argument("--merge", nargs="+", help="only merge these result names into --name")
  args = parser.parse_args()
  args.name = args.name or f"mechanism_scope-{jax.devices()[0].platform}"
  if args.merge:
    merged = [load(os.path.join(args.out, f"{n}.json")) for n in args.merge]
    runs = [r for _, rs in merged for r in rs]
    order = {c: i for i, c in enumerate(CELLS)}
    meta = dict(merged[0][0], command=[m["command"] for m, _ in merged])
    report(meta, sorted(runs, key=lambda r: order[r["cell"]]), args.out, args.name)
    return
  if args.quick:
    args.cells, args.seeds, args.epochs = args.cells[:2], 2, 2
  path = os.path.join(args.out, f"{args.name}.json")
  meta = dict(
    command=" ".join(["python benchmarks/mechanism_scope.py", *sys.argv[1:]]),
    machine=f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    seeds=args.seeds,
    epochs=args.epochs,
  )
  runs = []
  if os.path.exists(path):
    stored_meta, stored = load(path)
    if (stored_meta["seeds"], stored_meta["epochs"]) == (args.seeds, args.epochs):
      runs = [r for r in stored if r["cell"] in args.cells]
  if "base" in args.cells and args.base_from and not any(r["cell"] == "base" for r in runs):
    base_meta, base = load(args.base_from)
    if (base_meta["seeds"], base_meta["epochs"]) == (args.seeds, args.epochs):
      runs += [dict(r, cell="base") for r in base if r["variant"] in VARIANTS]
      meta["base_from"] = f"{os.path.relpath(args.base_from, HERE)} ({base_meta['date']})"
  done = {r["cell"] for r in runs}
  todo = [c for c in args.cells if c not in done]
  with tqdm(total=len(todo) * len(VARIANTS) * args.epochs, unit="epoch") as bar:
    for cell in todo:
      for variant in VARIANTS:
        bar.set_description(f"{cell}: {variant}")
        setup = setup_of(cell, args.epochs)
        for r in mech.trace(setup, variant, list(range(args.seeds)), lambda _: bar.update()):
          runs.append(dict(r, cell=cell))
      report(meta, runs, args.out, args.name)  # after every cell: a stop loses one cell at most
  order = {c: i for i, c in enumerate(args.cells)}
  report(meta, sorted(runs, key=lambda r: order[r["cell"]]), args.out, args.name)


if __name__ == "__main__":
  main()
