"""placement="direction": the modulation multiplies Adam's normalised step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import _common_test as optax_common

from qsgd_optax import qsgd, superpose

TARGETS = {
  "parabola": optax_common._setup_parabola,
  "rosenbrock": optax_common._setup_rosenbrock,
  "matrix_parabola": optax_common._setup_matrix_parabola,
  "mixed_tensor": optax_common._setup_mixed_tensor_target,
}
CIRCUITS = {
  "default": {},
  "ring": dict(entanglement="ring"),
  "chain2": dict(entanglement="chain", layers=2),
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
    1e-2, quantum_weight=0.5, n_qubits=2, placement=placement, weight_decay=0.0, **CIRCUITS[circuit]
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
    n_qubits=4,
    weight_decay=0.0,
    placement="direction",
    entanglement="ring",
  )
  b = optax.chain(optax.scale_by_adam(), superpose(0.3, 4, entanglement="ring"), optax.scale(-1e-3))
  sa, sb = a.init(theta), b.init(theta)
  for g in grads:
    ua, sa = a.update(g, sa, theta)
    ub, sb = b.update(g, sb, theta)
    np.testing.assert_allclose(ua, ub, rtol=1e-6)


@pytest.mark.parametrize("weight", [1.0, -1.0, 1.5])
def test_weight_at_or_beyond_one_is_refused(weight):
  with pytest.raises(ValueError, match=r"quantum_weight must lie in the open interval \(-1, 1\)"):
    qsgd(1e-3, quantum_weight=weight, placement="direction")
  qsgd(1e-3, quantum_weight=weight, placement="gradient")  # Allowed where Adam normalises.


def test_scheduled_weight_is_clipped_below_one():
  theta = jnp.array([0.5, 0.5])  # sin(pi theta) = 1: the factor is 1 + lambda.
  g = jnp.array([1.0, -1.0])
  tx = qsgd(1.0, quantum_weight=lambda count: 3.0, weight_decay=0.0, placement="direction", eps=0.0)
  updates, _ = tx.update(g, tx.init(theta), theta)
  at_bound = qsgd(1.0, quantum_weight=0.99, weight_decay=0.0, placement="direction", eps=0.0)
  want, _ = at_bound.update(g, at_bound.init(theta), theta)
  np.testing.assert_array_equal(updates, want)
  np.testing.assert_allclose(updates, -1.99 * np.sign(g), rtol=1e-4)  # float32 bias correction.
  tx = qsgd(
    1.0, quantum_weight=lambda count: -3.0, weight_decay=0.0, placement="direction", eps=0.0
  )
  updates, _ = tx.update(g, tx.init(theta), theta)
  assert np.all(np.sign(updates) == -np.sign(g))  # Never a sign flip: no false stationary point.


@pytest.mark.parametrize("backend", ["analytic", "statevector", "pennylane"])
def test_every_backend(backend):
  theta = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
  g = jax.random.normal(jax.random.PRNGKey(1), (5, 6))
  ref = qsgd(
    0.1,
    quantum_weight=0.5,
    n_qubits=3,
    placement="direction",
    entanglement="chain",
    backend="analytic",
  )
  tx = qsgd(
    0.1,
    quantum_weight=0.5,
    n_qubits=3,
    placement="direction",
    entanglement="chain",
    backend=backend,
  )
  u, _ = jax.jit(tx.update)(g, tx.init(theta), theta)
  u_ref, _ = ref.update(g, ref.init(theta), theta)
  np.testing.assert_allclose(u, u_ref, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_dtype_preserved_and_masked_leaves_untouched(dtype):
  params = {"w": jnp.linspace(-1, 1, 10, dtype=dtype), "step": jnp.array(3)}
  grads = {"w": jnp.ones(10, dtype), "step": jnp.array(0)}
  tx = optax.masked(
    qsgd(0.1, quantum_weight=0.5, placement="direction"), {"w": True, "step": False}
  )
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  assert updates["w"].dtype == dtype and np.all(np.isfinite(np.asarray(updates["w"], np.float32)))
  assert updates["step"] is grads["step"] or int(updates["step"]) == 0


def test_inject_hyperparams_and_multisteps():
  theta = jnp.array([0.3, -1.2, 2.0])
  inject = optax.inject_hyperparams(qsgd, static_args=("n_qubits", "layers"))
  tx = inject(learning_rate=0.1, quantum_weight=0.5, placement="direction")
  state = tx.init(theta)
  u, state = jax.jit(tx.update)(jnp.ones(3), state, theta)
  assert np.all(np.isfinite(u)) and np.all(u < 0)
  ms = optax.MultiSteps(qsgd(0.1, quantum_weight=0.5, placement="direction"), every_k_schedule=2)
  state = ms.init(theta)
  u1, state = ms.update(jnp.ones(3), state, theta)
  u2, state = ms.update(jnp.ones(3), state, theta)
  np.testing.assert_array_equal(u1, 0)
  assert np.all(u2 < 0)
