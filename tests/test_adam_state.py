"""qsgd runs on optax's own Adam: its state holds an ``optax.ScaleByAdamState``,
its arguments are ``optax.adamw``'s, and without the perturbation its updates
are AdamW's."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import qsgd_optax

SHAPES = {"s": (), "v": (5,), "m": (3, 7), "t": (2, 3, 5)}
HYPER = dict(b1=0.8, b2=0.95, eps=1e-6, eps_root=1e-9, weight_decay=1e-2)
CHAIN = qsgd_optax.Circuit(entanglement="chain")
# A constant quantum_weight=0 is optax's Adam exactly. A weight that is 0 only
# at run time (a schedule) keeps the modulation in the loop, which XLA:CPU
# compiles with other roundings: measured up to 1.7 ulps of the leaf's largest
# entry in float32 and float64 over 4 steps, none in bfloat16.
ULPS = {jnp.float32: 2 * 2.0**-23, jnp.float64: 2 * 2.0**-52, jnp.bfloat16: 0.0}


def random_tree(dtype, seed):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(SHAPES))
  return {
    k: jax.random.normal(key, s, jnp.float32).astype(dtype)
    for key, (k, s) in zip(keys, SHAPES.items())
  }


def assert_close(a, b, dtype, exact=True):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if exact:
    np.testing.assert_array_equal(a, b)
    return
  scale = np.abs(b).max() if b.size else 0.0
  np.testing.assert_array_less(np.abs(a - b), ULPS[dtype] * scale + 1e-300)


def run(tx, params, steps, state=None, seed=1):
  state = tx.init(params) if state is None else state
  step = jax.jit(tx.update)
  outs = []
  for i in range(steps):
    u, state = step(random_tree(jax.tree.leaves(params)[0].dtype, seed + i), state, params)
    outs.append(u)
  return outs, state


@pytest.mark.parametrize("weight", ["constant", "schedule"])
@pytest.mark.parametrize(
  "dtype", [jnp.float32, jnp.float64, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name
)
@pytest.mark.parametrize("mu_dtype", [None, jnp.bfloat16], ids=["mu-default", "mu-bf16"])
def test_without_perturbation_it_is_adamw(dtype, mu_dtype, weight, x64):
  params = random_tree(dtype, 0)
  zero = 0.0 if weight == "constant" else (lambda count: 0.0)
  tx = qsgd_optax.qsgd(1e-2, mu_dtype=mu_dtype, quantum_weight=zero, **HYPER)
  got, state = run(tx, params, 4)
  want, ref = run(optax.adamw(1e-2, mu_dtype=mu_dtype, **HYPER), params, 4)
  exact = weight == "constant"
  for a, b in zip(got, want):
    for k in params:
      assert a[k].dtype == b[k].dtype == dtype
      assert_close(a[k], b[k], dtype, exact)
  for name in ("mu", "nu"):
    got_m, want_m = optax.tree.get(state, name), optax.tree.get(ref, name)
    for k in params:
      assert got_m[k].dtype == want_m[k].dtype
      assert_close(got_m[k], want_m[k], dtype, exact)


def test_names_resolve_to_one_field():
  params = random_tree(jnp.float32, 0)
  tx = qsgd_optax.qsgd(1e-2)
  _, state = run(tx, params, 2)
  assert int(optax.tree.get(state, "count")) == 2
  assert isinstance(state[0].adam, optax.ScaleByAdamState)
  for name in ("mu", "nu"):
    moment = optax.tree.get(state, name)
    assert jax.tree.structure(moment) == jax.tree.structure(params)
  assert optax.tree.get(state, "mu") is state[0].adam.mu


def carry_moments(src, dst):
  """``dst`` with ``src``'s Adam moments and step count."""
  names = ("count", "mu", "nu")
  return optax.tree.set(dst, **{n: optax.tree.get(src, n) for n in names})


@pytest.mark.parametrize("direction", ["adamw-to-qsgd", "qsgd-to-adamw"])
def test_moments_carry_over_between_adamw_and_qsgd(direction):
  """Train with one, switch to the other carrying the moments: the run then
  continues as if the second had been used from the start with those moments."""
  params = random_tree(jnp.float32, 0)
  adamw = optax.adamw(1e-2, **HYPER)
  qsgd0 = qsgd_optax.qsgd(1e-2, quantum_weight=0.0, **HYPER)
  first, second = (adamw, qsgd0) if direction == "adamw-to-qsgd" else (qsgd0, adamw)
  _, trained = run(first, params, 3)
  switched = carry_moments(trained, second.init(params))
  assert int(optax.tree.get(switched, "count")) == 3
  got, _ = run(second, params, 2, state=switched, seed=10)
  want, _ = run(first, params, 2, state=trained, seed=10)
  for a, b in zip(got, want):
    for k in params:
      assert_close(a[k], b[k], jnp.float32)
  # With the perturbation on, the carried state is used as it is.
  _, trained = run(adamw, params, 3)
  tx = qsgd_optax.qsgd(1e-2, quantum_weight=0.5, circuit=CHAIN, **HYPER)
  run(tx, params, 1, state=carry_moments(trained, tx.init(params)))


def test_a_state_restores_into_another_circuit():
  """The circuit is a hyperparameter, as ``b1`` is: a state holds Adam's
  moments, a step count and a key, so it continues under another circuit
  (documented in the guide), and the new circuit is the one that applies."""
  params = random_tree(jnp.float32, 0)
  before = qsgd_optax.qsgd(1e-2, circuit=qsgd_optax.Circuit(n_qubits=4))
  after = qsgd_optax.qsgd(1e-2, circuit=qsgd_optax.Circuit(n_qubits=3, entanglement="ring"))
  _, state = run(before, params, 2)
  assert jax.tree.structure(state) == jax.tree.structure(after.init(params))
  got, _ = run(after, params, 1, state=state, seed=5)
  want, _ = run(after, params, 1, state=carry_moments(state, after.init(params)), seed=5)
  other, _ = run(before, params, 1, state=state, seed=5)
  for k in params:
    np.testing.assert_array_equal(got[0][k], want[0][k])
  assert not np.array_equal(got[0]["m"], other[0]["m"])


@pytest.mark.parametrize("placement", qsgd_optax.PLACEMENTS)
def test_vmap_over_models(placement):
  params = {"a": jnp.linspace(-1, 1, 6), "b": jnp.ones((2, 3))}
  tx = qsgd_optax.qsgd(1e-2, placement=placement, circuit=CHAIN)
  stacked = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
  states = jax.vmap(tx.init)(stacked)
  updates, _ = jax.vmap(tx.update)(jax.tree.map(lambda x: 0.3 * x, stacked), states, stacked)
  for i in range(2):
    one = jax.tree.map(lambda x, i=i: x[i], stacked)
    want, _ = tx.update(jax.tree.map(lambda x: 0.3 * x, one), tx.init(one), one)
    for k in params:
      np.testing.assert_allclose(updates[k][i], want[k], rtol=1e-6)


@pytest.mark.parametrize("placement", qsgd_optax.PLACEMENTS)
def test_float64_numpy_parameters_without_x64_warn_nothing(placement):
  """jax stores them as float32 while x64 is off, and so does the library,
  without the 'Explicitly requested dtype' warning (optax.adamw gives none)."""
  import warnings

  params = {"w": np.linspace(-1, 1, 12).reshape(3, 4)}
  tx = qsgd_optax.qsgd(1e-3, placement=placement, circuit=CHAIN)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    updates, _ = tx.update(params, tx.init(params), params)
  assert updates["w"].dtype == jnp.float32


@pytest.mark.parametrize("placement", qsgd_optax.PLACEMENTS)
def test_weight_schedule_reads_adams_step_count(placement):
  """A ``quantum_weight`` schedule is evaluated at the number of updates so
  far (0 at the first), like optax's schedules: step k equals a constant
  weight of ``schedule(k)`` applied to the same state."""
  schedule = optax.linear_schedule(0.0, 0.9, 3)  # 0, 0.3, 0.6 at steps 0, 1, 2.
  params = random_tree(jnp.float32, 0)
  scheduled = qsgd_optax.qsgd(1e-2, quantum_weight=schedule, placement=placement, **HYPER)
  state = scheduled.init(params)
  for k in range(3):
    grads = random_tree(jnp.float32, 10 + k)
    constant = qsgd_optax.qsgd(
      1e-2, quantum_weight=float(schedule(k)), placement=placement, **HYPER
    )
    want, _ = jax.jit(constant.update)(grads, state, params)
    got, state = jax.jit(scheduled.update)(grads, state, params)
    for key in params:  # Float rounding (a traced weight), relative to the leaf.
      scale = float(jnp.abs(want[key]).max())
      np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-6 * scale)
