import numpy as np
import pytest

from qsgd_optax import demo, experiments


def test_short_run_learns_and_reports(tmp_path):
  setup = experiments.ClassificationSetup(n_train=640, n_test=200, epochs=3)
  runs = [
    experiments.train_classifier(setup, name, seed)
    for seed in (0, 1)
    for name in ("adam", "qsgd-0.5")
  ]
  for r in runs:
    assert r["train_loss"][-1] < r["train_loss"][0]
    assert len(r["test_acc"]) == 3 and r["steps_per_epoch"] == 20
  rows = experiments.summarize(runs)
  q = next(r for r in rows if r["optimizer"] == "qsgd-0.5")
  acc = [r["test_acc"][-1] for r in runs if r["optimizer"] == "qsgd-0.5"]
  assert q["final_acc_mean"] == pytest.approx(np.mean(acc))
  assert q["wins"].endswith("/2") and q["epoch_time_ratio"] > 0
  assert "qsgd-0.5" in experiments.markdown(rows)
  experiments.plot(runs, str(tmp_path / "curves.png"))
  assert (tmp_path / "curves.png").stat().st_size > 1000


def test_epochs_to():
  assert experiments.epochs_to([0.5, 0.91, 0.95], 0.9) == 2
  assert experiments.epochs_to([0.5, 0.6], 0.9) is None


def test_unknown_optimizer():
  with pytest.raises(ValueError, match="unknown optimizer"):
    experiments.optimizer("sgd", 1e-3)


def test_demo_smoke(tmp_path, capsys):
  demo.main(["--seeds", "1", "--epochs", "1", "--plot", str(tmp_path / "d.png")])
  out = capsys.readouterr().out
  assert "qsgd-0.5-direction" in out and "floor" in out and (tmp_path / "d.png").exists()


def test_seeds_are_paired_and_vmapped_runs_match_single_runs():
  setup = experiments.ClassificationSetup(n_train=320, n_test=100, epochs=2)
  both = experiments.train_seeds(setup, "adam", [0, 1])
  alone = experiments.train_classifier(setup, "adam", 1)
  np.testing.assert_allclose(both[1]["test_acc"], alone["test_acc"], atol=0.011)
  np.testing.assert_allclose(both[1]["train_loss"], alone["train_loss"], rtol=1e-3)
  assert both[0]["train_loss"] != both[1]["train_loss"]


def test_mechanism_trace_separates_floor_and_direction():
  from qsgd_optax.experiments import mechanism

  setup = experiments.ClassificationSetup(n_train=320, n_test=100, epochs=1)
  floor = mechanism.trace(setup, "floor", [0])[0]
  direction = mechanism.trace(setup, "qsgd-0.5-direction", [0])[0]
  assert floor["update_change"][0] < 1e-5
  assert direction["update_change"][0] > 0.05
  assert 0 <= floor["distance"][0] < direction["distance"][0]
  assert mechanism.matched_noise_eta(setup, 0.5) > 0


@pytest.mark.parametrize("name", ["floor", "rand-0.5", "rand-0.5-direction", "addnoise-1e-4"])
def test_control_optimizers_build_and_step(name):
  import jax.numpy as jnp

  tx = experiments.optimizer(name, 1e-2)
  params = {"w": jnp.linspace(-1, 1, 6)}
  updates, _ = tx.update({"w": jnp.ones(6)}, tx.init(params), params)
  assert np.all(np.isfinite(updates["w"])) and np.all(updates["w"] < 0)
