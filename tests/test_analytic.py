import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from qsgd_optax import Gates
from qsgd_optax.backends.analytic import cospi, expectations, reduce_turns, sincospi, sinpi

CLOSED = [c for c in reference.CONFIGS if Gates.build(*c).has_closed_form]


def test_sinpi_float32_accuracy():
  x = np.linspace(-1, 1, 200_001, dtype=np.float32)
  got = np.asarray(jax.jit(sinpi)(jnp.asarray(x)), np.float64)
  want = np.sin(np.pi * x.astype(np.float64))
  assert np.max(np.abs(got - want)) < 2.5e-7
  # Exact zeros at the integers, relative accuracy near them.
  whole = x == np.round(x)
  np.testing.assert_array_equal(got[whole], 0)
  near = ~whole
  assert np.max(np.abs(got - want)[near] / np.abs(want)[near]) < 1e-6


def test_sinpi_float64(x64):
  x = np.linspace(-1, 1, 10_001)
  got = np.asarray(sinpi(jnp.asarray(x)))
  np.testing.assert_allclose(got, np.sin(np.pi * x), atol=1e-15)


def test_sincospi_float32_accuracy():
  x = np.linspace(-1, 1, 200_001, dtype=np.float32)
  h = np.float32(0.5)
  near_half = [np.nextafter(h, np.float32(0)), np.nextafter(h, np.float32(1))]
  x = np.concatenate([x, near_half, np.negative(near_half)]).astype(np.float32)
  s, c = (np.asarray(v, np.float64) for v in jax.jit(sincospi)(jnp.asarray(x)))
  np.testing.assert_array_equal(s, np.asarray(jax.jit(sinpi)(jnp.asarray(x)), np.float64))
  want = np.cos(np.pi * x.astype(np.float64))
  assert np.max(np.abs(c - want)) < 2.5e-7
  # Exact zeros at +-1/2, exact +-1 at the integers, relative accuracy elsewhere.
  half = np.abs(x) == 0.5
  np.testing.assert_array_equal(c[half], 0)
  np.testing.assert_array_equal(c[x == np.round(x)], want[x == np.round(x)])
  assert np.max(np.abs(c - want)[~half] / np.abs(want)[~half]) < 5e-7
  np.testing.assert_array_equal(np.asarray(jax.jit(cospi)(jnp.asarray(x)), np.float64), c)


def test_sincospi_float64(x64):
  x = np.linspace(-1, 1, 10_001)
  s, c = sincospi(jnp.asarray(x))
  np.testing.assert_allclose(s, np.sin(np.pi * x), atol=1e-15)
  np.testing.assert_allclose(c, np.cos(np.pi * x), atol=1e-15)


def test_reduce_turns_is_exact():
  rng = np.random.default_rng(0)
  x = np.concatenate(
    [
      rng.uniform(-1e3, 1e3, 10_000),
      rng.normal(size=1000) * 1e7,
      [0.0, -0.0, 1.0, -1.0, 2.5, 1e30, -1e30, 3.4e38, 1e-45, -1e-40],
    ]
  ).astype(np.float32)
  t = np.asarray(reduce_turns(jnp.asarray(x)), np.float64)
  assert np.all(np.abs(t) <= 1)
  # x - t is an even integer, computed exactly in float64. Subnormals may be
  # flushed to zero by XLA on CPU: then t is 0 (as sin(pi x) is, in float32).
  normal = np.abs(x) >= np.finfo(np.float32).tiny
  k = (x.astype(np.float64) - t)[normal | (x == 0)] / 2
  np.testing.assert_array_equal(k, np.round(k))
  assert np.all((t[~normal] == x[~normal]) | (t[~normal] == 0))


def test_reduce_turns_non_finite_is_zero():
  x = jnp.array([jnp.nan, jnp.inf, -jnp.inf, 0.25])
  np.testing.assert_array_equal(reduce_turns(x), [0, 0, 0, 0.25])


@pytest.mark.parametrize("config", CLOSED, ids=reference.config_id)
@pytest.mark.parametrize("seed", range(3))
def test_matches_dense_reference(config, seed):
  circuit = Gates.build(*config)
  n = circuit.n_qubits
  theta = np.random.default_rng(seed).uniform(-1, 1, (6, n)).astype(np.float32)
  got = jax.jit(lambda t: expectations(circuit, t))(jnp.asarray(theta))
  want = [reference.expectations(n, circuit.cnots, circuit.layers, row) for row in theta]
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_matches_dense_reference_float64(x64):
  circuit = Gates.build(4, "ring")
  theta = np.random.default_rng(1).uniform(-1, 1, (5, 4))
  got = expectations(circuit, jnp.asarray(theta))
  assert got.dtype == jnp.float64
  want = [reference.expectations(4, circuit.cnots, 1, row) for row in theta]
  np.testing.assert_allclose(got, want, atol=1e-13)


def test_rejects_circuit_without_closed_form():
  with pytest.raises(ValueError, match="closed form"):
    expectations(Gates.build(3, "chain", 2), jnp.zeros((1, 3)))
