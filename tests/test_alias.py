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


INJECTED_CIRCUITS = {
  "default": Circuit(),
  "ring3": Circuit(n_qubits=3, entanglement="ring"),
  "paper": Circuit(entanglement="chain", layers=2),
  "shots": Circuit(shots=16),
}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("circuit", list(INJECTED_CIRCUITS))
@pytest.mark.parametrize("placement", ["gradient", "update", "direction"])
def test_inject_hyperparams_gives_qsgds_updates(placement, circuit, jit):
  """As for optax.adamw: no static_args, eagerly and under jit, and the
  injected values can be changed in the state."""
  theta = jnp.array([0.3, -1.2, 2.0, 0.7, -0.1])
  kwargs = dict(placement=placement, circuit=INJECTED_CIRCUITS[circuit], key=3)
  tx = optax.inject_hyperparams(qsgd)(learning_rate=0.1, quantum_weight=0.4, **kwargs)
  init, update = (jax.jit(tx.init), jax.jit(tx.update)) if jit else (tx.init, tx.update)
  state = init(theta)
  assert set(state.hyperparams) >= {"learning_rate", "quantum_weight", "b1"}
  assert "circuit" not in state.hyperparams and "placement" not in state.hyperparams
  # inject_hyperparams hands every number over as a float32 array (1 - b1 is
  # then rounded from float32's 0.9, not from Python's), and under jit as an
  # argument, not a constant XLA could fold: so does the reference.
  fixed = dict(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=1e-4)
  reference = lambda g, s, numbers: qsgd(**numbers, **kwargs).update(g, s, theta)
  reference = jax.jit(reference) if jit else reference
  ref_state = qsgd(0.1, **kwargs).init(theta)
  for lr, lam in [(0.1, 0.4), (0.05, 0.8)]:
    state.hyperparams["learning_rate"] = jnp.asarray(lr)
    state.hyperparams["quantum_weight"] = jnp.asarray(lam)
    g = jnp.cos(theta * lr)
    u, state = update(g, state, theta)
    numbers = dict(learning_rate=lr, quantum_weight=lam, **fixed)
    u_ref, ref_state = reference(g, ref_state, {k: jnp.float32(v) for k, v in numbers.items()})
    np.testing.assert_array_equal(u, u_ref)


def test_schedules():
  theta = jnp.array([0.3, -1.2, 2.0])
  tx = qsgd(
    optax.cosine_decay_schedule(0.1, 100),
    quantum_weight=optax.linear_schedule(0.0, 1.0, 100),
    circuit=Circuit(n_qubits=3),
  )
  x, _ = train(tx, theta, parabola, 50)
  assert np.all(np.isfinite(x))


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"b1": 1.5}, r"b1 must be a finite float in \[0, 1\)"),
    ({"b1": 1.0}, r"b1 must be a finite float in \[0, 1\)"),
    ({"b2": -0.1}, r"b2 must be a finite float in \[0, 1\)"),
    ({"eps": -1.0}, r"eps must be a finite float >= 0"),
    ({"eps_root": float("inf")}, r"eps_root must be a finite float >= 0"),
    ({"weight_decay": -1.0}, r"weight_decay must be a finite float >= 0"),
    ({"learning_rate": float("nan")}, r"learning_rate must be a finite float"),
  ],
  ids=str,
)
def test_bad_hyperparameters_fail_when_built(kwargs, match):
  kwargs = {"learning_rate": 1e-3, **kwargs}
  with pytest.raises(ValueError, match=match):
    qsgd(**kwargs)


def test_schedules_and_injected_hyperparameters_pass_the_checks():
  qsgd(optax.constant_schedule(1e-3), weight_decay=optax.constant_schedule(1e-4))
  tx = optax.inject_hyperparams(qsgd)(learning_rate=1e-3, b1=0.5, weight_decay=0.1)
  jax.jit(tx.update)(jnp.ones(3), jax.jit(tx.init)(jnp.ones(3)), jnp.ones(3))
  with pytest.raises(TypeError, match="b1 must be"):
    qsgd(1e-3, b1="0.9x")


def test_bad_arguments():
  with pytest.raises(ValueError, match="placement"):
    qsgd(1e-3, placement="moments")
  with pytest.raises(TypeError, match="unexpected keyword"):  # A typo.
    qsgd(1e-3, entanglment="ring")
  with pytest.raises(ValueError, match="quantum_weight"):
    qsgd(1e-3, quantum_weight=float("nan"))


@pytest.mark.parametrize("factory", [qsgd, superpose], ids=lambda f: f.__name__)
def test_circuit_keywords_of_0_4_name_the_new_form(factory):
  args = (1e-3,) if factory is qsgd else ()
  with pytest.raises(
    TypeError, match=r"circuit=qsgd_optax\.Circuit\(n_qubits=3, entanglement='ring'\)"
  ):
    factory(*args, n_qubits=3, entanglement="ring")
  with pytest.raises(TypeError, match=r"Circuit\(n_qubits=3\)"):
    factory(*args, circuit=3)
  with pytest.raises(TypeError, match=r"Circuit\(custom=fn\)"):
    factory(*args, circuit=lambda angles: angles)


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


def test_only_numbers_are_injected():
  """The circuit and the strings stay static under inject_hyperparams: none
  can change in the state, so eager and jitted updates cannot disagree."""
  tx = optax.inject_hyperparams(qsgd)(
    learning_rate=0.1, placement="update", circuit=Circuit(n_qubits=3, entanglement="chain")
  )
  theta = jnp.array([0.3, -1.2, 2.0])
  state = tx.init(theta)
  assert set(state.hyperparams) == {
    "learning_rate",
    "b1",
    "b2",
    "eps",
    "eps_root",
    "weight_decay",
    "quantum_weight",
    "key",
  }
  eager, _ = tx.update(jnp.ones(3), state, theta)
  jitted, _ = jax.jit(tx.update)(jnp.ones(3), state, theta)
  np.testing.assert_allclose(eager, jitted, rtol=1e-6)
