"""scale_by_packed_adam gives optax.scale_by_adam's updates, with both moments
of a float32/float64 leaf in one complex array, and keeps the circuit to one
evaluation and no temporary inside qsgd's compiled step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import qsgd_optax
from qsgd_optax.packed_adam import (
  MomentPair,
  ScaleByPackedAdamState,
  moments,
  scale_by_packed_adam,
)

SHAPES = [(), (5,), (3, 7), (2, 3, 5)]
HYPER = dict(b1=0.8, b2=0.95, eps=1e-6, eps_root=1e-9)
# Float rounding: the same operations, fused differently by XLA, differ in the
# last bits (a few ulps; 16-bit leaves take optax's own path and are equal).
ULPS = {jnp.float32: 4 * 2.0**-23, jnp.float64: 4 * 2.0**-52, jnp.bfloat16: 0, jnp.float16: 0}


def assert_close(a, b, dtype, scale=None):
  """Equal to ``ULPS[dtype]`` relative to ``scale`` (default the leaf's
  largest entry: moments mix signs, so an entry may cancel to near 0)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  scale = np.abs(b).max() if scale is None else scale
  np.testing.assert_array_less(np.abs(a - b), ULPS[dtype] * scale + 1e-300)


def random_tree(dtype, seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(SHAPES))
  leaves = [jax.random.normal(k, s).astype(dtype) for k, s in zip(keys, SHAPES)]
  return {f"x{i}": x for i, x in enumerate(leaves)}


def run(tx, grads_seq, params):
  state = tx.init(params)
  outs = []
  for g in grads_seq:
    u, state = jax.jit(tx.update)(g, state, params)
    outs.append(u)
  return outs, state


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16])
def test_same_updates_and_moments_as_optax(dtype, x64):
  params = random_tree(dtype)
  grads = [random_tree(dtype, seed) for seed in range(1, 5)]
  got, state = run(scale_by_packed_adam(**HYPER), grads, params)
  want, ref = run(optax.scale_by_adam(**HYPER), grads, params)
  for a, b in zip(got, want):
    for k in params:
      assert a[k].dtype == b[k].dtype == dtype
      assert_close(a[k], b[k], dtype)
  mu, nu = moments(state)
  for k in params:
    assert_close(mu[k], ref.mu[k], dtype)
    assert_close(nu[k], ref.nu[k], dtype)
  packed = state.mu_nu["x1"]
  if dtype in (jnp.float32, jnp.float64):
    assert packed.dtype == jnp.result_type(dtype, jnp.complex64) and packed.shape == (5,)
  else:
    assert isinstance(packed, MomentPair) and packed.mu.dtype == dtype


def test_other_leaves_pass_through():
  params = {"f": jnp.ones(3), "i": jnp.arange(3), "c": jnp.ones(2, jnp.complex64), "n": None}
  grads = {"f": jnp.full(3, 0.5), "i": jnp.arange(3) * 2, "c": jnp.full(2, 1j, jnp.complex64)}
  grads["n"] = None
  tx = scale_by_packed_adam()
  state = tx.init(params)
  updates, state = tx.update(grads, state)
  assert state.mu_nu["i"] is None and state.mu_nu["c"] is None and state.mu_nu["n"] is None
  assert updates["i"] is grads["i"] and updates["c"] is grads["c"] and updates["n"] is None
  ref = optax.scale_by_adam()
  want, _ = ref.update({"f": grads["f"]}, ref.init({"f": params["f"]}))
  assert_close(updates["f"], want["f"], jnp.float32)


def test_moments_of_a_tuple_of_parameters():
  """A tuple in the parameters' tree is a container, not a leaf's moments."""
  params = (jnp.ones(3), jnp.ones(2, jnp.bfloat16))
  grads = (jnp.full(3, 0.5), jnp.full(2, 0.5, jnp.bfloat16))
  tx, ref = scale_by_packed_adam(), optax.scale_by_adam()
  _, state = tx.update(grads, tx.init(params))
  _, want = ref.update(grads, ref.init(params))
  mu, nu = moments(state)
  for got, exp in ((mu, want.mu), (nu, want.nu)):
    assert isinstance(got, tuple) and len(got) == 2
    for a, b in zip(got, exp):
      assert a.dtype == b.dtype and a.shape == b.shape
      np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_wrappers_and_vmap():
  params = {"a": jnp.linspace(-1, 1, 6), "b": jnp.ones((2, 3))}
  grads = jax.tree.map(lambda p: 0.3 * p + 0.1, params)
  wrapped = {
    "masked": lambda tx: optax.masked(tx, {"a": True, "b": False}),
    "multi_steps": lambda tx: optax.MultiSteps(tx, every_k_schedule=2),
  }
  wrapped["inject_hyperparams"] = lambda tx: tx
  for name, wrap in wrapped.items():
    if name == "inject_hyperparams":
      mine = optax.inject_hyperparams(scale_by_packed_adam)(b1=0.5)
      theirs = optax.inject_hyperparams(optax.scale_by_adam)(b1=0.5)
    else:
      mine, theirs = wrap(scale_by_packed_adam()), wrap(optax.scale_by_adam())
    got, _ = run(mine, [grads, grads], params)
    want, _ = run(theirs, [grads, grads], params)
    for k in params:
      assert_close(got[-1][k], want[-1][k], jnp.float32)
  tx = scale_by_packed_adam()
  stacked = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
  states = jax.vmap(tx.init)(stacked)
  updates, states = jax.vmap(tx.update)(jax.tree.map(lambda x: 0.3 * x, stacked), states)
  assert isinstance(states, ScaleByPackedAdamState) and states.mu_nu["b"].shape == (2, 2, 3)
  for i in range(2):
    one = jax.tree.map(lambda x, i=i: x[i], stacked)
    (want,), _ = run(tx, [jax.tree.map(lambda x: 0.3 * x, one)], one)
    for k in params:
      assert_close(updates[k][i], want[k], jnp.float32)


@pytest.mark.parametrize("placement", qsgd_optax.PLACEMENTS)
@pytest.mark.parametrize(
  "circuit", [{}, {"entanglement": "ring"}, {"entanglement": "chain", "layers": 2}], ids=str
)
def test_qsgd_equals_the_chain_with_optax_adam(placement, circuit):
  """qsgd's own Adam is only a different state: rebuilt with optax's Adam,
  every placement gives the same updates, step after step."""
  from qsgd_optax.alias import _below_one, _sum_of
  from qsgd_optax.superpose import CircuitOptions, perturbation

  options = CircuitOptions(**circuit)
  adam = optax.scale_by_adam()
  if placement == "gradient":
    direction = optax.chain(perturbation(0.5, options), adam)
  elif placement == "update":
    direction = _sum_of(adam, perturbation(0.5, options, combine="term"))
  else:
    direction = optax.chain(adam, perturbation(_below_one(0.5), options))
  ref = optax.chain(direction, optax.add_decayed_weights(1e-4), optax.scale_by_learning_rate(1e-2))
  tx = qsgd_optax.qsgd(1e-2, 0.5, placement=placement, **circuit)
  params = random_tree(jnp.float32)
  grads = [random_tree(jnp.float32, seed) for seed in range(1, 4)]
  sa, sb = tx.init(params), ref.init(params)
  for g in grads:
    ua, sa = jax.jit(tx.update)(g, sa, params)
    ub, sb = jax.jit(ref.update)(g, sb, params)
    for k in params:
      assert_close(ua[k], ub[k], jnp.float32)


@pytest.mark.parametrize(
  "circuit", [{}, {"entanglement": "chain"}, {"entanglement": "chain", "layers": 2}], ids=str
)
def test_qsgd_step_has_no_params_sized_temporary(circuit):
  """The donated step (update + apply) of qsgd holds no params-sized
  temporary on this backend: the circuit is evaluated inside the loop that
  writes both moments (optax's separate moments need one for an entangled
  circuit, which this checks the test can see)."""
  params = {"w": jnp.ones((256, 256))}
  leaf_bytes = params["w"].nbytes

  def temp_bytes(tx):
    def step(p, s, g):
      u, s = tx.update(g, s, p)
      return optax.apply_updates(p, u), s

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  assert temp_bytes(qsgd_optax.qsgd(1e-3, **circuit)) < leaf_bytes / 8
  if circuit:
    chain = optax.chain(qsgd_optax.superpose(0.5, **circuit), optax.adamw(1e-3))
    assert temp_bytes(chain) >= leaf_bytes
