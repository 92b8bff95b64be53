import numpy as np
import pytest
import reference

from qsgd_optax import Gates, entangling_pairs


def test_patterns():
  assert entangling_pairs(None, 4) == ()
  assert entangling_pairs("chain", 4) == ((0, 1), (1, 2), (2, 3))
  assert entangling_pairs("ring", 4) == ((0, 1), (1, 2), (2, 3), (3, 0))
  assert entangling_pairs("ring", 1) == ()
  assert entangling_pairs([[2, 0], (1, 3)], 4) == ((2, 0), (1, 3))


@pytest.mark.parametrize(
  "bad, error",
  [
    ("star", ValueError),
    ([(0, 0)], ValueError),
    ([(0, 4)], ValueError),
    ([(0,)], TypeError),
    (3, TypeError),
  ],
)
def test_bad_patterns(bad, error):
  with pytest.raises(error, match="entanglement"):
    entangling_pairs(bad, 4)


def test_gate_list():
  gates = Gates.build(2, "chain", layers=2).sequence()
  names = [(g.name, g.wires, g.param) for g in gates]
  layer = [
    ("RY", (0,), 0),
    ("RZ", (0,), 0),
    ("RY", (1,), 1),
    ("RZ", (1,), 1),
    ("CNOT", (0, 1), None),
  ]
  assert names == [("H", (0,), None), ("H", (1,), None), *layer, *layer]


@pytest.mark.parametrize(
  "n, ent, expected",
  [
    (3, None, ((0,), (1,), (2,))),
    (4, "chain", ((0,), (0, 1), (0, 1, 2), (0, 1, 2, 3))),
    (4, "ring", ((1, 2, 3), (0, 1), (0, 1, 2), (0, 1, 2, 3))),
    (2, "ring", ((1,), (0, 1))),
  ],
)
def test_parity_sets(n, ent, expected):
  assert Gates.build(n, ent).parity_sets() == expected


@pytest.mark.parametrize("seed", range(5))
def test_parity_sets_match_dense_simulation(seed):
  """<Z_i> = prod_{j in S_i} (-sin(pi t_j)) on random CNOT networks."""
  rng = np.random.default_rng(seed)
  n = int(rng.integers(2, 6))
  pairs = [tuple(rng.choice(n, 2, replace=False)) for _ in range(rng.integers(1, 7))]
  circuit = Gates.build(n, pairs)
  theta = rng.uniform(-2, 2, n)
  z = reference.expectations(n, circuit.cnots, 1, theta)
  closed = [np.prod(-np.sin(np.pi * theta[list(s)])) for s in circuit.parity_sets()]
  np.testing.assert_allclose(z, closed, atol=1e-12)


def test_closed_form_flags():
  assert Gates.build(4, None, 3).has_closed_form
  assert Gates.build(4, "ring", 1).has_closed_form
  assert not Gates.build(4, "chain", 2).has_closed_form
