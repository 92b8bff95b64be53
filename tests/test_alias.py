import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qsgd_optax import Circuit, qsgd, superpose

TARGET = jnp.array([1.0, -1.0, 1.0])


def parabola(x):
  return jnp.sum((x - TARGET) ** 2)


def rosenbrock(p):
  return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def train(tx, x0, loss, steps):
  def body(carry, _):
    x, state = carry
    updates, state = tx.update(jax.grad(loss)(x), state, x)
    return (optax.apply_updates(x, updates), state), None

  (x, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps))((x0, tx.init(x0)))
  return x, float(loss(x))


# Adam at a constant learning rate jitters around the minimum: the learning rate
# decays to 0 over each run (a schedule longer than the run left the final loss
# to the jitter's phase: 6e-9 on jax 0.10.2, 1.5e-6 on jax 0.7.1 for chain-ring).
OPTIMIZERS = {
  "qsgd": lambda lr: qsgd(lr, quantum_weight=0.5),
  "chain": lambda lr: optax.chain(superpose(0.5), optax.adamw(lr)),
  "chain-ring": lambda lr: optax.chain(
    superpose(0.5, Circuit(n_qubits=2, entanglement="ring")), optax.adamw(lr)
  ),
}


def decaying(steps):
  return optax.cosine_decay_schedule(2e-2, steps)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_converges_on_parabola(name):
  tx = OPTIMIZERS[name](decaying(4000))
  x, loss = train(tx, jnp.array([-1.0, 10.0, 1.0]), parabola, 4000)
  assert loss < 1e-6, x


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_converges_on_rosenbrock(name):
  tx = OPTIMIZERS[name](decaying(20_000))
  x, loss = train(tx, jnp.array([-1.5, 2.0]), rosenbrock, 20_000)
  assert loss < 1e-6, x


def test_literal_rule_stalls_where_gradient_placement_converges():
  """The issue's claim, confirmed: with |lambda g| > 1 the unnormalised term
  cancels the Adam step at a false stationary point of every sine period."""
  x0 = jnp.array([-1.0, 10.0, 1.0])
  x, loss = train(qsgd(1e-2, quantum_weight=0.5, placement="update"), x0, parabola, 30_000)
  assert loss > 100 and abs(float(x[1]) - 10) < 0.1, x
  _, loss = train(qsgd(1e-2, quantum_weight=0.5), x0, parabola, 30_000)
  assert loss < 1e-6
  # Rosenbrock's larger gradients make the literal rule diverge.
  _, loss = train(
    qsgd(1e-2, quantum_weight=0.5, placement="update"), jnp.array([-1.5, 2.0]), rosenbrock, 5_000
  )
  assert not loss < 1.0


def test_literal_rule_converges_with_small_gradients():
  x0 = TARGET + jnp.array([0.3, -0.2, 0.1])  # |lambda g| <= 0.3 throughout.
  _, loss = train(qsgd(1e-2, quantum_weight=0.5, placement="update"), x0, parabola, 3_000)
  assert loss < 1e-6


def test_literal_rule_first_step():
  lr, lam, wd = 0.1, 0.5, 0.01
  theta = jnp.array([0.3, -1.2, 2.0, 0.75])
  g = jnp.array([0.5, -2.0, 1.0, 3.0])
  tx = qsgd(lr, quantum_weight=lam, weight_decay=wd, placement="update", eps=0.0)
  updates, _ = tx.update(g, tx.init(theta), theta)
  adam_dir = np.sign(g)  # m_hat / sqrt(v_hat) at step 1.
  want = -lr * (adam_dir + lam * np.sin(np.pi * np.float64(theta)) * g) - lr * wd * theta
  np.testing.assert_allclose(updates, want, rtol=1e-5)


def test_gradient_placement_is_the_chain():
  theta = jax.random.normal(jax.random.PRNGKey(0), (3, 5))
  g = jax.random.normal(jax.random.PRNGKey(1), (3, 5))
  a, b = (
    qsgd(1e-3, quantum_weight=0.5, circuit=Circuit(entanglement="chain")),
    optax.chain(superpose(0.5, Circuit(entanglement="chain")), optax.adamw(1e-3)),
  )
  ua, _ = a.update(g, a.init(theta), theta)
  ub, _ = b.update(g, b.init(theta), theta)
  np.testing.assert_array_equal(ua, ub)


def test_schedules():
  theta = jnp.array([0.3, -1.2, 2.0])
  tx = qsgd(
    optax.cosine_decay_schedule(0.1, 100),
    quantum_weight=optax.linear_schedule(0.0, 1.0, 100),
    circuit=Circuit(n_qubits=3),
  )
  x, _ = train(tx, theta, parabola, 50)
  assert np.all(np.isfinite(x))


def test_schedules_pass_the_checks():
  qsgd(optax.constant_schedule(1e-3), weight_decay=optax.constant_schedule(1e-4))


def test_apply_if_finite_around_qsgd():
  theta = jnp.array([0.3, -1.2, 2.0])
  tx = optax.apply_if_finite(qsgd(0.1, circuit=Circuit(n_qubits=3, entanglement="ring")), 3)
  state = tx.init(theta)
  update = jax.jit(tx.update)
  u, state = update(jnp.array([1.0, jnp.inf, 1.0]), state, theta)
  np.testing.assert_array_equal(u, 0)
  assert int(state.notfinite_count) == 1
  u, state = update(jnp.ones(3), state, theta)
  assert np.all(np.isfinite(u)) and np.all(u != 0)
  assert int(state.notfinite_count) == 0


def test_donating_one_state_leaves_other_states_usable():
  theta = jnp.array([0.3, -1.2, 2.0])
  tx = qsgd(0.1, quantum_weight=0.5, circuit=Circuit(shots=8))
  first, second = tx.init(theta), tx.init(theta)
  step = jax.jit(lambda s: tx.update(jnp.ones(3), s, theta), donate_argnums=0)
  step(first)
  u, _ = step(second)  # Failed with a deleted key when init shared one array.
  assert np.all(np.isfinite(u))
