"""Calibrates the ``ordered`` synthetic task: Adam's learning curve per setting.

Trains the paper's classifier with plain Adam (the paper's settings, 3 paired
seeds) on :func:`study.tasks.ordered_topics` for each
generator setting given, and reports per seed the first epoch at 90% test
accuracy, the peak and the final accuracy. The target: 90% first reached
around epoch 7, about 91-92% at the end of 10+ epochs, as the paper's Adam
did.

Run:
  python benchmarks/calibrate_task.py --epochs 14 \\
    --setting n_train=3000,order_fraction=0.5 --setting n_train=2000,order_fraction=0.7
Writes benchmarks/results/calibrate_task-<platform>.{json,md}.
"""

import argparse
import os

import jax
import numpy as np
from _results import save

from qsgd_optax import experiments
from study import tasks
from study.classification import epochs_to

HERE = os.path.dirname(os.path.abspath(__file__))


def parse(setting):
  out = {}
  for item in setting.split(","):
    key, value = item.split("=")
    out[key] = float(value) if "." in value else int(value)
  return out


def run(setting, seeds, epochs):
  setting = dict(setting)
  n_train = setting.pop("n_train", tasks.TASK_SIZES["ordered"][0])
  setup = experiments.ClassificationSetup(
    task="ordered", n_train=n_train, epochs=epochs, task_kwargs=setting
  )
  runs = experiments.train_seeds(setup, "adam", seeds)
  return dict(
    setting=dict(n_train=n_train, **setting),
    test_acc=[r["test_acc"] for r in runs],
    epochs_to_90=[epochs_to(r["test_acc"], 0.9) for r in runs],
    peak=[max(r["test_acc"]) for r in runs],
    final=[r["test_acc"][-1] for r in runs],
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--setting", action="append", required=True)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=14)
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  lines = [
    "| setting | epoch first at 90% (per seed) | peak | final |",
    "| --- | --- | --- | --- |",
  ]
  results = []
  for setting in args.setting:
    r = run(parse(setting), list(range(args.seeds)), args.epochs)
    results.append(r)
    line = (
      f"| {setting} | {r['epochs_to_90']} | {np.mean(r['peak']):.3f} | {np.mean(r['final']):.3f} |"
    )
    lines.append(line)
    print(line, flush=True)
    print("  mean curve:", np.round(np.mean(r["test_acc"], 0), 3).tolist(), flush=True)
  save(args.out, f"calibrate_task-{jax.devices()[0].platform}", results, "\n".join(lines))


if __name__ == "__main__":
  main()
