import numpy as np

from qsgd_optax.experiments.tasks import arithmetic_problems, topic_sequences


def test_topic_sequences_are_seeded_and_separable():
  x, y = topic_sequences(500, seed=3)
  x2, y2 = topic_sequences(500, seed=3)
  np.testing.assert_array_equal(x, x2)
  np.testing.assert_array_equal(y, y2)
  assert x.min() >= 1 and x.max() < 96 and set(np.unique(y)) == {0, 1, 2, 3}
  # Counting each class's keywords recovers the label up to the label noise.
  keywords = 1 + np.arange(24).reshape(4, 6)
  counts = np.stack([np.isin(x, k).sum(1) for k in keywords], 1)
  agree = np.mean(counts.argmax(1) == y)
  assert 0.9 < agree < 1.0


def test_arithmetic_answers_are_right():
  for _q, a, v in arithmetic_problems(200, seed=1):
    steps = a.split("####")[0]
    last = steps.strip().rstrip(".").split("=")[-1].strip()
    assert int(last) == v and a.endswith(f"#### {v}")


def test_digits_is_real_data_split_without_overlap():
  from qsgd_optax.experiments.tasks import load

  x, y, xt, _ = load("digits")
  assert x.shape == (1297, 64) and xt.shape == (500, 64)
  assert x.min() >= 0 and x.max() <= 16 and set(np.unique(y)) == set(range(10))
  train_rows = {r.tobytes() for r in x}
  assert sum(r.tobytes() in train_rows for r in xt) < 25  # Only genuine duplicate images.
