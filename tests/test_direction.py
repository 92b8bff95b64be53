"""placement="direction": the modulation multiplies Adam's normalised step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import _common_test as optax_common

from qsgd_optax import Circuit, qsgd, superpose

TARGETS = {
  "parabola": optax_common._setup_parabola,
  "rosenbrock": optax_common._setup_rosenbrock,
  "matrix_parabola": optax_common._setup_matrix_parabola,
  "mixed_tensor": optax_common._setup_mixed_tensor_target,
}
CIRCUITS = {
  "default": Circuit(n_qubits=2),
  "ring": Circuit(n_qubits=2, entanglement="ring"),
  "chain2": Circuit(n_qubits=2, entanglement="chain", layers=2),
}


def run(opt, params, obj_fn, steps):
  @jax.jit
  def step(carry, _):
    params, state = carry
    updates, state = opt.update(jax.grad(obj_fn)(params), state, params)
    return (optax.apply_updates(params, updates), state), None

  state = optax.tree.map_params(opt, lambda v: v, opt.init(params))
  (params, _), _ = jax.lax.scan(step, (params, state), length=steps)
  return params


@pytest.mark.parametrize("circuit", list(CIRCUITS))
@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("placement", ["gradient", "direction"])
def test_optax_contrib_problems_converge(placement, target, circuit):
  """Optax's contrib common test: 30k steps, then within 3e-2 of the optimum."""
  initial, final, obj_fn = TARGETS[target](jnp.float32)
  opt = qsgd(
    1e-2, quantum_weight=0.5, placement=placement, weight_decay=0.0, circuit=CIRCUITS[circuit]
  )
  params = run(opt, initial, obj_fn, 30_000)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=3e-2, atol=3e-2), params, final)


def test_first_step_is_the_modulated_adam_direction():
  lr, lam, wd = 0.1, 0.5, 0.01
  theta = jnp.array([0.3, -1.2, 2.0, 0.75])
  g = jnp.array([0.5, -2.0, 1.0, 3.0])
  tx = qsgd(lr, quantum_weight=lam, weight_decay=wd, placement="direction", eps=0.0)
  updates, _ = tx.update(g, tx.init(theta), theta)
  factor = 1 + lam * np.sin(np.pi * np.float64(theta))
  want = -lr * factor * np.sign(g) - lr * wd * theta  # m_hat / sqrt(v_hat) = sign(g) at step 1.
  np.testing.assert_allclose(updates, want, rtol=1e-5)


def test_is_adam_then_superpose():
  theta = jax.random.normal(jax.random.PRNGKey(0), (3, 7))
  grads = [jax.random.normal(jax.random.PRNGKey(i), (3, 7)) for i in range(1, 4)]
  a = qsgd(
    1e-3,
    quantum_weight=0.3,
    weight_decay=0.0,
    placement="direction",
    circuit=Circuit(entanglement="ring"),
  )
  b = optax.chain(
    optax.scale_by_adam(), superpose(0.3, Circuit(entanglement="ring")), optax.scale(-1e-3)
  )
  sa, sb = a.init(theta), b.init(theta)
  for g in grads:
    ua, sa = a.update(g, sa, theta)
    ub, sb = b.update(g, sb, theta)
    np.testing.assert_allclose(ua, ub, rtol=1e-6)


@pytest.mark.parametrize("weight", [1.0, -1.0, 1.5])
def test_weight_at_or_beyond_one_is_allowed_where_adam_normalises(weight):
  """Refused under placement="direction" (test_contract.py), not elsewhere."""
  qsgd(1e-3, quantum_weight=weight, placement="gradient")
  qsgd(1e-3, quantum_weight=weight, placement="update")


def direction_step(weight, theta, g):
  tx = qsgd(1.0, quantum_weight=weight, weight_decay=0.0, placement="direction", eps=0.0)
  return tx.update(g, tx.init(theta), theta)[0]


@pytest.mark.parametrize("weight", [0.995, -0.995, 0.9999999])
def test_a_weight_inside_the_bound_is_never_changed(weight):
  """One bound, |lambda| < 1: a constant, a schedule and an injected value
  inside it all give the same step, with the factor 1 + lambda."""
  theta = jnp.array([0.5, 0.5])  # sin(pi theta) = 1: the factor is 1 + lambda.
  g = jnp.array([1.0, -1.0])
  constant = direction_step(weight, theta, g)
  np.testing.assert_array_equal(direction_step(lambda count: weight, theta, g), constant)
  injected = optax.inject_hyperparams(qsgd)(
    1.0, quantum_weight=weight, weight_decay=0.0, placement="direction", eps=0.0
  )
  injected_step = jax.jit(injected.update)(g, injected.init(theta), theta)[0]
  factor = np.float32(1) + np.float32(weight)
  for step in (constant, injected_step):  # rtol: float32 bias correction, far below 0.995 - 0.99.
    np.testing.assert_allclose(step, -factor * np.sign(g), rtol=1e-5)


def test_a_scheduled_weight_beyond_the_bound_is_held_inside_it():
  """A schedule cannot be checked when the optimizer is built: a value
  beyond the bound becomes the nearest one inside, as documented."""
  theta = jnp.array([0.5, 0.5])
  g = jnp.array([1.0, -1.0])
  inside = float(np.nextafter(np.float32(1), np.float32(0)))
  np.testing.assert_array_equal(
    direction_step(lambda count: 3.0, theta, g), direction_step(inside, theta, g)
  )
  updates = direction_step(lambda count: -3.0, theta, g)
  assert np.all(np.sign(updates) == -np.sign(g))  # Never a sign flip: no false stationary point.


@pytest.mark.parametrize("backend", ["analytic", "statevector", "pennylane"])
def test_every_backend(backend):
  theta = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
  g = jax.random.normal(jax.random.PRNGKey(1), (5, 6))
  ref = qsgd(
    0.1,
    quantum_weight=0.5,
    placement="direction",
    circuit=Circuit(n_qubits=3, entanglement="chain", backend="analytic"),
  )
  tx = qsgd(
    0.1,
    quantum_weight=0.5,
    placement="direction",
    circuit=Circuit(n_qubits=3, entanglement="chain", backend=backend),
  )
  u, _ = jax.jit(tx.update)(g, tx.init(theta), theta)
  u_ref, _ = ref.update(g, ref.init(theta), theta)
  np.testing.assert_allclose(u, u_ref, atol=1e-6)


def test_float16_preserved_and_masked_leaves_untouched():
  """float16 too (float32 and bfloat16, with every form: test_contract.py)."""
  dtype = jnp.float16
  params = {"w": jnp.linspace(-1, 1, 10, dtype=dtype), "step": jnp.array(3)}
  grads = {"w": jnp.ones(10, dtype), "step": jnp.array(0)}
  tx = optax.masked(
    qsgd(0.1, quantum_weight=0.5, placement="direction"), {"w": True, "step": False}
  )
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  assert updates["w"].dtype == dtype and np.all(np.isfinite(np.asarray(updates["w"], np.float32)))
  assert updates["step"] is grads["step"] or int(updates["step"]) == 0
