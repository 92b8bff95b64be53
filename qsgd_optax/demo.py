"""``python -m qsgd_optax.demo``: the README's main job (see
:mod:`qsgd_optax.experiments.demo`)."""

from qsgd_optax.experiments.demo import main

if __name__ == "__main__":
  main()
