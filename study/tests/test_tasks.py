import numpy as np
import pytest

from study.tasks import arithmetic_problems, load, ordered_topics, topic_sequences


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


@pytest.mark.parametrize("order_fraction", [0.0, 0.5, 1.0])
def test_ordered_topics_label_is_the_first_keyword(order_fraction):
  x, y = ordered_topics(2000, seed=4, label_noise=0.0, order_fraction=order_fraction)
  keywords = 1 + np.arange(24).reshape(4, 6)
  first = [next((t - 1) // 6 for t in row if 1 <= t <= 24) for row in x]
  np.testing.assert_array_equal(first, y)
  # Counting keywords is right only where the distractor has fewer of them.
  counts = np.stack([np.isin(x, k).sum(1) for k in keywords], 1)
  by_count = np.mean(counts.argmax(1) == y)
  assert by_count == 1.0 if order_fraction == 0.0 else by_count < 1 - 0.4 * order_fraction


def test_ordered_task_sizes_and_noise():
  x, y, xt, yt = load("ordered")
  assert x.shape == (4500, 32) and xt.shape == (1000, 32)
  clean = ordered_topics(5500, seed=1234, label_noise=0.0)[1]
  assert 0.02 < np.mean(np.concatenate([y, yt]) != clean) < 0.06  # 5% flipped, 1/4 to itself.


def test_arithmetic_answers_are_right():
  for _q, a, v in arithmetic_problems(200, seed=1):
    steps = a.split("####")[0]
    last = steps.strip().rstrip(".").split("=")[-1].strip()
    assert int(last) == v and a.endswith(f"#### {v}")


def test_digits_is_real_data_split_without_overlap():
  from study.tasks import load

  x, y, xt, _ = load("digits")
  assert x.shape == (1297, 64) and xt.shape == (500, 64)
  assert x.min() >= 0 and x.max() <= 16 and set(np.unique(y)) == set(range(10))
  train_rows = {r.tobytes() for r in x}
  assert sum(r.tobytes() in train_rows for r in xt) < 25  # Only genuine duplicate images.


def test_load_passes_generator_settings():
  x, y, xt, _ = load("ordered", n_train=50, n_test=10, seed=5, order_fraction=0.0, label_noise=0.0)
  rx, ry = ordered_topics(60, seed=5, order_fraction=0.0, label_noise=0.0)
  np.testing.assert_array_equal(x, rx[:50])
  np.testing.assert_array_equal(xt, rx[50:])
  np.testing.assert_array_equal(y, ry[:50])
  with pytest.raises(TypeError, match="digits takes no generator settings"):
    load("digits", order_fraction=0.5)
