"""The paper's synthetic sequence-classification experiment, honestly repeated.

Trains the paper's classifier (embedding 64, 4 heads, FFN 128, 2 layers,
dropout 0.1, batch 32, lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay)
on :func:`qsgd_optax.tasks.topic_sequences` with plain Adam (the paper's
baseline) and ``qsgd`` at lambda in {0.1, 0.5, 1.0} with both placements,
over several seeds; optionally (``--quantum``) the 2x2 of classical/quantum
attention under Adam and ``qsgd`` lambda 0.5. Optimizers run interleaved
within each seed, so time ratios share the machine's noise.

Run:
  python benchmarks/sequence_classification.py              # 5 seeds, 10 epochs
  python benchmarks/sequence_classification.py --quantum    # + the 2x2 arm
  python benchmarks/sequence_classification.py --quick
Writes benchmarks/results/sequence_classification.{json,md,png}.
"""

import argparse
import json
import os
import platform
import time

import jax
from tqdm import tqdm

from qsgd_optax import experiments

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIMIZERS = [
  "adam",
  "qsgd-0.1",
  "qsgd-0.5",
  "qsgd-1.0",
  "qsgd-0.1-update",
  "qsgd-0.5-update",
  "qsgd-1.0-update",
]
QUANTUM_OPTIMIZERS = ["adam", "qsgd-0.5"]


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--optimizers", nargs="+", default=OPTIMIZERS)
  parser.add_argument(
    "--quantum", action="store_true", help="add quantum-attention runs (2x2 design)"
  )
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  if args.quick:
    args.seeds, args.epochs = 2, 3
  os.makedirs(args.out, exist_ok=True)
  arms = [("classical", o) for o in args.optimizers]
  if args.quantum:
    arms += [("quantum", o) for o in QUANTUM_OPTIMIZERS]
  runs = []
  with tqdm(total=len(arms) * args.seeds * args.epochs, unit="epoch") as bar:
    for seed in range(args.seeds):
      for attn, opt in arms:
        setup = experiments.ClassificationSetup(
          epochs=args.epochs, quantum_attention=attn == "quantum"
        )
        bar.set_description(f"seed {seed} {attn} {opt}")
        run = experiments.train_classifier(setup, opt, seed, on_epoch=lambda _: bar.update())
        run["attention"] = attn
        runs.append(run)
  rows = experiments.summarize(runs)
  meta = dict(
    command="python benchmarks/sequence_classification.py "
    + " ".join(f"--{k}" for k, v in vars(args).items() if v is True),
    machine=f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    seeds=args.seeds,
    epochs=args.epochs,
    setup=vars(experiments.ClassificationSetup()),
  )
  with open(os.path.join(args.out, "sequence_classification.json"), "w") as f:
    json.dump(dict(meta=meta, summary=rows, runs=runs), f)
  md = (
    f"{meta['machine']}; jax {meta['jax']}; {meta['date']}; "
    f"{args.seeds} seeds x {args.epochs} epochs.\n\n" + experiments.markdown(rows)
  )
  with open(os.path.join(args.out, "sequence_classification.md"), "w") as f:
    f.write(md + "\n")
  experiments.plot(runs, os.path.join(args.out, "sequence_classification.png"))
  print(md)


if __name__ == "__main__":
  main()
