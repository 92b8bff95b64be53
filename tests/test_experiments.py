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
