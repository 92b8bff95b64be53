"""The README's main job: Adam against ``qsgd`` on the paper's classifier.

A small version of ``python -m study.sequence_classification``: the paper's
transformer on a classification task, plain Adam against ``qsgd`` at lambda
0.5 with the default placement (the gradient, before Adam), the direction
placement (after Adam's normalisation), and the noise-floor control (Adam on
gradients times ``1 + 1e-6 u``), over 3 paired seeds. Prints the table (final
accuracy, epochs to 90%, time per epoch and its ratio to Adam, a paired
comparison) and saves the learning curves as a PNG: a curve that lies on the
noise floor's is a perturbation Adam does not notice.

Run: python -m study.demo [--task ordered|topics|digits] [--seeds 3] [--epochs 5]
       [--n-train N] [--n-test N] [--layers 2]
"""

import argparse
from collections.abc import Sequence
from typing import Any, Optional

from tqdm import tqdm

from study import classification as experiments
from study.tasks import TASKS

OPTIMIZERS = ("adam", "floor", "qsgd-0.5", "qsgd-0.5-direction")


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
  """Runs the demo: trains every optimizer, prints the table, saves the plot.

  Args:
    argv: the command-line arguments (``None``: ``sys.argv[1:]``).

  Returns:
    The runs, :func:`~study.classification.train_seeds`'s histories of
    every optimizer and seed.
  """
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--task", default="ordered", choices=TASKS)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--plot", default="qsgd_demo.png")
  parser.add_argument("--n-train", type=int, help="training sequences (default: the task's)")
  parser.add_argument("--n-test", type=int, help="test sequences (default: the task's)")
  parser.add_argument("--layers", type=int, default=2, help="transformer layers (the paper's: 2)")
  args = parser.parse_args(argv)
  n_train = 3000 if args.task == "topics" and args.n_train is None else args.n_train
  setup = experiments.ClassificationSetup(
    task=args.task,
    n_train=n_train,
    n_test=args.n_test,
    epochs=args.epochs,
    model=dict(num_layers=args.layers),
  )
  seeds = list(range(args.seeds))
  runs = []
  with tqdm(total=len(OPTIMIZERS) * args.epochs, unit="epoch") as bar:
    for opt in OPTIMIZERS:
      bar.set_description(f"{opt} ({args.seeds} seeds)")
      runs += experiments.train_seeds(setup, opt, seeds, on_epoch=lambda _: bar.update())
  print(
    f"\nTask {args.task!r} ({len(runs[0]['test_acc'])} epochs, {runs[0]['steps_per_epoch']} "
    f"steps each), paper's transformer, batch {setup.batch_size}, lr {setup.learning_rate}, "
    f"{args.seeds} paired seeds (same init, data order and dropout for every optimizer):\n"
  )
  print(experiments.markdown(experiments.summarize(runs)))
  experiments.plot(runs, args.plot)
  print(f"\nLearning curves saved to {args.plot}")
  return runs


if __name__ == "__main__":
  main()
