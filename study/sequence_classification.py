"""The paper's sequence-classification experiment, honestly repeated.

Trains the paper's classifier (embedding 64, 4 heads, FFN 128, 2 layers,
dropout 0.1, batch 32, lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay)
on a task of :mod:`study.tasks` (``ordered``: synthetic and
calibrated, the default; ``topics``: the v0.1 task; ``digits``: real data)
with plain Adam (the paper's baseline), ``qsgd`` at lambda 0.1 and 0.5 with
the placements gradient, update and direction, and controls: the noise
floor, a random circuit-free modulation of qsgd-0.5's size (on the gradient
and on Adam's direction) and ``optax.add_noise`` with a matched variance.
Seeds are paired (same init, data order and dropout for every optimizer) and
train together under ``jax.vmap``. Optionally (``--quantum``) the 2x2 of
classical/quantum attention under Adam and ``qsgd`` lambda 0.5.

Run from the repository's root:
  python -m study.sequence_classification --epochs 12     # ordered, 10 seeds
  python -m study.sequence_classification --task digits --epochs 12
  python -m study.sequence_classification --quantum       # + the 2x2 arm
  python -m study.sequence_classification --quick
Writes study/results/sequence_classification-<platform>-<task>.{json,md,png}.
"""

import argparse
import os
import platform
import time
from collections.abc import Sequence
from typing import Any, Optional

import jax
from tqdm import tqdm

from study import classification as experiments
from study import tasks
from study._results import RESULTS, save
from study.mechanism import matched_noise_eta

OPTIMIZERS = [
  "adam",
  "floor",
  "qsgd-0.1",
  "qsgd-0.5",
  "qsgd-0.1-update",
  "qsgd-0.5-update",
  "qsgd-0.1-direction",
  "qsgd-0.5-direction",
  "rand-0.5",
  "rand-0.5-direction",
  "addnoise",
]
QUANTUM_OPTIMIZERS = ["adam", "qsgd-0.5"]


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
  """The command line (see the module doc); returns the runs."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--task", default="ordered", choices=tasks.TASKS)
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--optimizers", nargs="+", default=OPTIMIZERS)
  parser.add_argument(
    "--quantum", action="store_true", help="add quantum-attention runs (2x2 design)"
  )
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=RESULTS)
  args = parser.parse_args(argv)
  if args.quick:
    args.seeds, args.epochs = 2, 3
  os.makedirs(args.out, exist_ok=True)
  arms = [("classical", o) for o in args.optimizers]
  if args.quantum:
    arms += [("quantum", o) for o in QUANTUM_OPTIMIZERS]
  runs = []
  seeds = list(range(args.seeds))
  with tqdm(total=len(arms) * args.epochs, unit="epoch") as bar:
    for attn, opt in arms:
      setup = experiments.ClassificationSetup(
        task=args.task, epochs=args.epochs, quantum_attention=attn == "quantum"
      )
      name = opt
      if opt == "addnoise":  # Variance matched to qsgd-0.5's perturbation.
        name = f"addnoise-{matched_noise_eta(setup, 0.5):.3g}"
      bar.set_description(f"{attn} {name} ({args.seeds} seeds)")
      runs += experiments.train_seeds(setup, name, seeds, on_epoch=lambda _: bar.update())
  rows = experiments.summarize(runs)
  meta = dict(
    command=f"python -m study.sequence_classification --task {args.task} "
    f"--seeds {args.seeds} --epochs {args.epochs}"
    + "".join(f" --{k}" for k, v in vars(args).items() if v is True),
    machine=f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    seeds=args.seeds,
    epochs=args.epochs,
    setup=vars(experiments.ClassificationSetup(task=args.task)),
  )
  name = f"sequence_classification-{jax.devices()[0].platform}-{args.task}"
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; "
    f"{args.seeds} seeds x {args.epochs} epochs.\n\n" + experiments.markdown(rows)
  )
  save(args.out, name, dict(meta=meta, summary=rows, runs=runs), md, indent=None)
  experiments.plot(runs, os.path.join(args.out, name + ".png"))
  return runs


if __name__ == "__main__":
  main()
