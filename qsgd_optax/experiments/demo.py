"""The README's main job: Adam against ``qsgd`` on the paper's classifier.

A small version of ``benchmarks/sequence_classification.py``: the paper's
transformer on the synthetic sequence-classification task, plain Adam against
``qsgd`` at lambda 0.5 with both placements, over 3 seeds. Prints the table
(final accuracy, epochs to 90%, time per epoch and its ratio to Adam, a
paired comparison) and saves the learning curves as a PNG. About 2 minutes
on 2 CPU cores.

Run: python -m qsgd_optax.demo [--seeds 3] [--epochs 5] [--plot qsgd_demo.png]
"""

import argparse

from tqdm import tqdm

from qsgd_optax.experiments import classification as experiments

OPTIMIZERS = ("adam", "qsgd-0.5", "qsgd-0.5-update")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--plot", default="qsgd_demo.png")
  args = parser.parse_args(argv)
  setup = experiments.ClassificationSetup(n_train=3000, epochs=args.epochs)
  runs = []
  with tqdm(total=args.seeds * len(OPTIMIZERS) * args.epochs, unit="epoch") as bar:
    for seed in range(args.seeds):
      for opt in OPTIMIZERS:
        bar.set_description(f"seed {seed} {opt}")
        runs.append(experiments.train_classifier(setup, opt, seed, on_epoch=lambda _: bar.update()))
  print(
    f"\nSynthetic sequence classification ({setup.n_train} train / "
    f"{setup.n_test} test sequences), paper's transformer, batch "
    f"{setup.batch_size}, lr {setup.learning_rate}, {args.epochs} epochs, "
    f"{args.seeds} seeds:\n"
  )
  print(experiments.markdown(experiments.summarize(runs)))
  experiments.plot(runs, args.plot)
  print(f"\nLearning curves saved to {args.plot}")


if __name__ == "__main__":
  main()
