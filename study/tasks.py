"""Synthetic tasks for the experiments, generated in code from a seed.

``topic_sequences``: the sequence-classification task. Each class owns a set
of keyword tokens; a sequence holds ``k`` keywords of its own class and
``k - 1`` of a distractor class, scattered among filler tokens, and a
fraction of labels is flipped. Telling the classes apart needs counting
keywords across the whole sequence (a bag-of-words model can do it; a
transformer must learn to pool), and the label noise caps the attainable
accuracy below 100%, so optimizers separate on how fast and how close they
get to the cap.

``ordered_topics``: the same keywords, but the label is the class of the
*first* keyword in the sequence, while a distractor class has at least as
many keywords in a fraction ``order_fraction`` of sequences (so counting is
wrong there, and only position tells the classes apart). A transformer learns
the counting part fast and the order part slowly, which gives the task
headroom: with 4500 training sequences and ``order_fraction=0.5``, Adam with
the paper's settings first reaches 90% test accuracy at epochs 5-8 and ends
near 91% (``python -m study.calibrate_task``), as the paper's Adam did.

``arithmetic_problems``: GSM8K-style word problems with worked answers, for
the fine-tuning experiment.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025 (Section IV describes a
  synthetic text-classification task without giving its generator).
"""

from collections.abc import Callable
from typing import Any, Optional

import numpy as np

Tokens = tuple[np.ndarray, np.ndarray]


def topic_sequences(
  n: int,
  *,
  num_classes: int = 4,
  seq_len: int = 32,
  vocab_size: int = 96,
  keywords_per_class: int = 6,
  label_noise: float = 0.05,
  keyword_range: tuple[int, int] = (2, 5),
  seed: int = 0,
) -> Tokens:
  """``(tokens [n, seq_len] int32, labels [n] int32)``; token 0 is unused.

  A sequence holds ``k`` keywords of its class, ``k`` drawn from
  ``range(*keyword_range)``, and ``k - 1`` of another class.

  Examples:
    >>> from study.tasks import topic_sequences
    >>> x, y = topic_sequences(8, seed=1)
    >>> x.shape, y.shape, int(x.max()) < 96
    ((8, 32), (8,), True)
  """

  def place(rng: np.random.Generator, row: np.ndarray, own: np.ndarray, other: np.ndarray) -> None:
    k = rng.integers(*keyword_range)
    picks = np.concatenate([rng.choice(own, k), rng.choice(other, k - 1)])
    row[rng.choice(seq_len, picks.size, replace=False)] = picks

  return _keyword_sequences(
    n, place, num_classes, seq_len, vocab_size, keywords_per_class, label_noise, seed
  )


def ordered_topics(
  n: int,
  *,
  num_classes: int = 4,
  seq_len: int = 32,
  vocab_size: int = 96,
  keywords_per_class: int = 6,
  label_noise: float = 0.05,
  count_range: tuple[int, int] = (1, 4),
  order_fraction: float = 0.5,
  seed: int = 0,
) -> Tokens:
  """``(tokens [n, seq_len] int32, labels [n] int32)``: the label is the class
  of the first keyword; the distractor class has at least as many keywords in
  a fraction ``order_fraction`` of sequences, one fewer otherwise.

  Examples:
    >>> from study.tasks import ordered_topics
    >>> x, y = ordered_topics(8, seed=1)
    >>> x.shape, y.shape, int(x.max()) < 96
    ((8, 32), (8,), True)
  """

  def place(rng: np.random.Generator, row: np.ndarray, own: np.ndarray, other: np.ndarray) -> None:
    k = rng.integers(*count_range)
    k_other = k + rng.integers(0, 2) if rng.random() < order_fraction else k - 1
    slots = np.sort(rng.choice(seq_len, k + k_other, replace=False))
    rest = np.concatenate([rng.choice(own, k - 1), rng.choice(other, k_other)])
    row[slots] = np.concatenate([rng.choice(own, 1), rng.permutation(rest)])

  return _keyword_sequences(
    n, place, num_classes, seq_len, vocab_size, keywords_per_class, label_noise, seed
  )


Place = Callable[[np.random.Generator, np.ndarray, np.ndarray, np.ndarray], None]


def _keyword_sequences(
  n: int,
  place: Place,
  num_classes: int,
  seq_len: int,
  vocab_size: int,
  keywords_per_class: int,
  label_noise: float,
  seed: int,
) -> Tokens:
  """Filler sequences with a class each; ``place(rng, row, own_keywords,
  distractor_keywords)`` writes the keywords of one row; a fraction
  ``label_noise`` of labels is redrawn."""
  rng = np.random.default_rng(seed)
  n_kw = num_classes * keywords_per_class
  keywords = 1 + np.arange(n_kw).reshape(num_classes, keywords_per_class)
  filler = np.arange(1 + n_kw, vocab_size)
  labels = rng.integers(0, num_classes, n)
  tokens = rng.choice(filler, size=(n, seq_len))
  for i, c in enumerate(labels):
    other = (c + rng.integers(1, num_classes)) % num_classes
    place(rng, tokens[i], keywords[c], keywords[other])
  flip = rng.random(n) < label_noise
  labels = np.where(flip, rng.integers(0, num_classes, n), labels)
  return tokens.astype(np.int32), labels.astype(np.int32)


_NAMES = ["Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"]
_ITEMS = ["apples", "books", "coins", "pens", "shells", "stamps", "cards", "eggs"]


def arithmetic_problems(
  n: int, *, seed: int = 0, max_value: int = 20
) -> list[tuple[str, str, int]]:
  """GSM8K-style problems: ``[(question, worked_answer, final_number)]``.

  Examples:
    >>> from study.tasks import arithmetic_problems
    >>> q, a, v = arithmetic_problems(1, seed=3)[0]
    >>> a.endswith(f"#### {v}")
    True
  """
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b, c = (int(v) for v in rng.integers(1, max_value, 3))
    kind = rng.integers(0, 3)
    if kind == 0:
      q = f"{name} has {a} {item} and buys {b} more. How many {item} now?"
      steps, v = f"{a} + {b} = {a + b}.", a + b
    elif kind == 1:
      a, b = max(a, b), min(a, b)
      q = f"{name} has {a} {item} and gives away {b}. How many are left?"
      steps, v = f"{a} - {b} = {a - b}.", a - b
    else:
      q = f"{name} buys {a} bags of {item} with {b} in each, then finds {c} more. How many {item}?"
      steps, v = f"{a} * {b} = {a * b}. {a * b} + {c} = {a * b + c}.", a * b + c
    out.append((q, f"{steps} #### {v}", v))
  return out


# Default sizes (train, test). "topics" is the task of version 0.1; "ordered" is
# calibrated (study/calibrate_task.py, 3 seeds, 14 epochs): Adam first at
# 90% test accuracy at epochs 5-8 (mean 6.3), 90.7% at the end, peak 92.1%.
TASK_SIZES = {"topics": (4000, 1000), "ordered": (4500, 1000), "digits": (1297, 500)}
TASKS = tuple(TASK_SIZES)


def digits_sequences(seed: int = 0) -> Tokens:
  """scikit-learn's handwritten digits (1797 8x8 images of the UCI set) as
  sequences of 64 pixel-intensity tokens in ``0..16``, shuffled by ``seed``.

  Real data that ships inside the ``scikit-learn`` package (no download).
  """
  from sklearn.datasets import load_digits

  data = load_digits()
  order = np.random.default_rng(seed).permutation(len(data.target))
  return data.data[order].astype(np.int32), data.target[order].astype(np.int32)


def load(
  name: str,
  n_train: Optional[int] = None,
  n_test: Optional[int] = None,
  seed: int = 1234,
  **generator_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """``(x_train, y_train, x_test, y_test)`` of a task in :data:`TASKS`.

  ``generator_kwargs`` go to the synthetic task's generator
  (:func:`topic_sequences` or :func:`ordered_topics`); ``digits`` takes none.

  Examples:
    >>> from study.tasks import load
    >>> x, y, xt, yt = load("topics", n_train=10, n_test=5)
    >>> x.shape, xt.shape
    ((10, 32), (5, 32))
  """
  if name not in TASK_SIZES:
    raise ValueError(f"task must be one of {TASKS}, got {name!r}.")
  default_train, default_test = TASK_SIZES[name]
  n_train = default_train if n_train is None else n_train
  n_test = default_test if n_test is None else n_test
  if name == "digits":
    x, y = digits_sequences(seed)
    if generator_kwargs:
      raise TypeError(f"digits takes no generator settings, got {sorted(generator_kwargs)}.")
    if n_train + n_test > len(y):
      raise ValueError(f"digits has {len(y)} examples, asked for {n_train + n_test}.")
  else:
    generate = ordered_topics if name == "ordered" else topic_sequences
    x, y = generate(n_train + n_test, seed=seed, **generator_kwargs)
  return x[:n_train], y[:n_train], x[n_train : n_train + n_test], y[n_train : n_train + n_test]
