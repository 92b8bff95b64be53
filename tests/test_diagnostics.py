import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import qsgd_optax
from qsgd_optax._src.diagnostics import update_change


def problem():
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  params = {"w": jax.random.normal(k1, (6, 5)), "b": jnp.zeros(5), "n": jnp.array(2)}
  x = jax.random.normal(k2, (16, 6))

  def grad_fn(p, i):
    loss = lambda q: jnp.mean((jnp.tanh(x @ q["w"] + q["b"]) - 0.1 * i) ** 2)
    g = jax.grad(loss)({"w": p["w"], "b": p["b"]})
    return {**g, "n": jnp.array(0)}

  return params, grad_fn


def test_identical_optimizers_change_nothing():
  params, grad_fn = problem()
  base = optax.adamw(1e-2, weight_decay=1e-4)
  out = update_change(optax.adamw(1e-2, weight_decay=1e-4), base, grad_fn, params, steps=5)
  assert out.relative.shape == (5,)
  assert float(out.relative.max()) < 1e-6  # Float rounding (XLA fuses each side its own way).
  np.testing.assert_allclose(out.cosine, 1, rtol=1e-6)
  assert out.per_leaf["w"].shape == (5,)


def test_non_float_leaves_are_skipped():
  params, grad_fn = problem()
  out = update_change(optax.identity(), optax.identity(), grad_fn, params, steps=2)
  assert out.per_leaf["n"] is None
  np.testing.assert_array_equal(out.relative, 0)


def test_matches_a_direct_computation():
  params, grad_fn = problem()
  base = optax.adamw(1e-2, weight_decay=1e-4)
  tx = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, placement="direction")
  out = update_change(tx, base, grad_fn, params, steps=3)
  p, s_tx, s_base = params, tx.init(params), base.init(params)
  for i in range(3):
    g = grad_fn(p, i)
    u_base, s_base = base.update(g, s_base, p)
    u_tx, s_tx = tx.update(g, s_tx, p)
    diff = np.concatenate([np.ravel(u_tx[k] - u_base[k]) for k in ("w", "b")])
    ref = np.concatenate([np.ravel(u_base[k]) for k in ("w", "b")])
    np.testing.assert_allclose(
      out.relative[i], np.linalg.norm(diff) / np.linalg.norm(ref), rtol=1e-5
    )
    w = np.linalg.norm(u_tx["w"] - u_base["w"]) / np.linalg.norm(u_base["w"])
    np.testing.assert_allclose(out.per_leaf["w"][i], w, rtol=1e-5)
    p = optax.apply_updates(p, u_base)


@pytest.mark.parametrize(
  "placement, low, high",
  [("gradient", 0.0, 0.05), ("update", 1e-3, 0.1), ("direction", 0.2, 0.6)],
)
def test_placements_rank_as_the_mechanism_says(placement, low, high):
  """Adam undoes a positive rescaling of the gradient (tiny change), the
  literal rule adds a term scaled by the small gradient, and the direction
  placement rescales the normalised step itself."""
  params, grad_fn = problem()
  base = optax.adamw(1e-2, weight_decay=1e-4)
  tx = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, placement=placement)
  out = update_change(tx, base, grad_fn, params, steps=20)
  assert low <= float(np.median(out.relative)) <= high
  if placement == "gradient":
    assert float(out.relative[0]) < 1e-5  # Step 1: m_hat / sqrt(v_hat) = sign(g) exactly.
  if placement == "direction":  # 1 + 0.5 sin(pi theta) rescales every step from the start.
    assert float(out.relative[0]) > 0.2
