"""Calibrates the ``ordered`` synthetic task: Adam's learning curve per setting.

Trains the paper's classifier with plain Adam (the paper's settings, 3 paired
seeds) on :func:`study.tasks.ordered_topics` for each
generator setting given, and reports per seed the first epoch at 90% test
accuracy, the peak and the final accuracy. The target: 90% first reached
around epoch 7, about 91-92% at the end of 10+ epochs, as the paper's Adam
did.

Run from the repository's root:
  python -m study.calibrate_task --epochs 14 \\
    --setting n_train=3000,order_fraction=0.5 --setting n_train=2000,order_fraction=0.7
Writes study/results/calibrate_task-<platform>.{json,md}.
"""

import argparse
from collections.abc import Sequence
from typing import Any, Optional, Union

import jax
import numpy as np

from study import classification as experiments
from study import tasks
from study._results import RESULTS, save
from study.classification import epochs_to


def parse(setting: str) -> dict[str, Union[int, float]]:
  out: dict[str, Union[int, float]] = {}
  for item in setting.split(","):
    key, value = item.split("=")
    out[key] = float(value) if "." in value else int(value)
  return out


def run(setting: dict[str, Any], seeds: list[int], epochs: int) -> dict[str, Any]:
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


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
  """The command line (see the module doc); returns each setting's curves."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--setting", action="append", required=True)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=14)
  parser.add_argument("--out", default=RESULTS)
  args = parser.parse_args(argv)
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
  return results


if __name__ == "__main__":
  main()
