import contextlib
import io

import numpy as np
import pytest

from study import classification, demo
from study.tasks import ordered_topics

# One set-up for the harness tests, trained once, by the README's demo (its four optimizers on
# seeds 0 and 1, each pair vmapped). One transformer layer: the harness does not depend on
# depth, and compiling is most of the cost.
SETUP = classification.ClassificationSetup(
  task="topics", n_train=320, n_test=100, epochs=2, model=dict(num_layers=1)
)
DEMO_ARGS = [
  *("--task", SETUP.task, "--n-train", str(SETUP.n_train), "--n-test", str(SETUP.n_test)),
  *("--epochs", str(SETUP.epochs), "--layers", str(SETUP.model["num_layers"])),
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
  """The demo's runs, printed table and plot."""
  plot = tmp_path_factory.mktemp("demo") / "curves.png"
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    runs = demo.main([*DEMO_ARGS, "--seeds", "2", "--plot", str(plot)])
  return runs, out.getvalue(), plot


@pytest.fixture(scope="module")
def runs(demo_run):
  return demo_run[0]


def test_demo_trains_every_optimizer_and_reports(demo_run):
  runs, out, plot = demo_run
  assert [r["optimizer"] for r in runs] == [o for o in demo.OPTIMIZERS for _ in range(2)]
  assert "qsgd-0.5-direction" in out and "floor" in out and plot.stat().st_size > 1000


def test_short_run_learns_and_reports(runs, tmp_path):
  for r in runs:
    assert r["train_loss"][-1] < r["train_loss"][0]
    assert len(r["test_acc"]) == SETUP.epochs and r["steps_per_epoch"] == 10
    assert r["attention"] == "classical"
  rows = classification.summarize(runs)
  q = next(r for r in rows if r["optimizer"] == "qsgd-0.5")
  acc = [r["test_acc"][-1] for r in runs if r["optimizer"] == "qsgd-0.5"]
  assert q["final_acc_mean"] == pytest.approx(np.mean(acc))
  assert q["wins"].endswith("/2") and q["epoch_time_ratio"] > 0
  assert "qsgd-0.5" in classification.markdown(rows)
  classification.plot(runs, str(tmp_path / "curves.png"))
  assert (tmp_path / "curves.png").stat().st_size > 1000


def test_epochs_to():
  assert classification.epochs_to([0.5, 0.91, 0.95], 0.9) == 2
  assert classification.epochs_to([0.5, 0.6], 0.9) is None


def test_unknown_optimizer():
  with pytest.raises(ValueError, match="unknown optimizer"):
    classification.optimizer("sgd", 1e-3)


def test_seeds_are_paired_and_vmapped_runs_match_single_runs(runs):
  both = [r for r in runs if r["optimizer"] == "adam"]
  alone = classification.train_classifier(SETUP, "adam", 1)
  np.testing.assert_allclose(both[1]["test_acc"], alone["test_acc"], atol=0.011)
  np.testing.assert_allclose(both[1]["train_loss"], alone["train_loss"], rtol=1e-3)
  assert both[0]["train_loss"] != both[1]["train_loss"]


def test_mechanism_trace_separates_floor_and_direction():
  from study import mechanism

  # No dropout: its masks cost most of the compile time and the property does not need them.
  setup = classification.ClassificationSetup(
    n_train=320, n_test=100, epochs=1, model=dict(dropout=0.0, num_layers=1)
  )
  floor = mechanism.trace(setup, "floor", [0])[0]
  direction = mechanism.trace(setup, "qsgd-0.5-direction", [0])[0]
  assert floor["update_change"][0] < 1e-5
  assert direction["update_change"][0] > 0.05
  assert 0 <= floor["distance"][0] < direction["distance"][0]
  assert mechanism.matched_noise_eta(setup, 0.5) > 0


@pytest.mark.parametrize("name", ["floor", "rand-0.5", "rand-0.5-direction", "addnoise-1e-4"])
def test_control_optimizers_build_and_step(name):
  import jax.numpy as jnp

  tx = classification.optimizer(name, 1e-2)
  params = {"w": jnp.linspace(-1, 1, 6)}
  updates, _ = tx.update({"w": jnp.ones(6)}, tx.init(params), params)
  assert np.all(np.isfinite(updates["w"])) and np.all(updates["w"] < 0)


def test_setup_passes_generator_settings_to_the_task():
  settings = dict(order_fraction=0.0, label_noise=0.0)
  setup = classification.ClassificationSetup(
    task="ordered", n_train=48, n_test=16, task_kwargs=settings
  )
  prob = classification.Problem(setup, [0])
  x, y = ordered_topics(64, seed=setup.data_seed, **settings)
  np.testing.assert_array_equal(prob.x, x[:48])
  np.testing.assert_array_equal(prob.yt, y[48:])
