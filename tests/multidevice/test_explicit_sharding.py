"""Every optimizer form under JAX's explicit sharding (``AxisType.Explicit``, ``jax.set_mesh``).

Runs under 8 simulated CPU devices (launched by tests/test_sharding.py). Each
sharded step is compared with the same step on unsharded arrays, and its
compiled program is read for collectives. ``grouping.forced`` traces the
formulations the GPU and TPU compile, not only the CPU's.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import qsgd_optax
from conftest import run_example
from qsgd_optax.grouping import GROUPINGS, forced

AxisType = getattr(jax.sharding, "AxisType", None)
pytestmark = [
  pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices: run via test_sharding.py"),
  pytest.mark.skipif(
    AxisType is None or not hasattr(jax, "set_mesh"),
    reason=f"jax {jax.__version__} has no explicit sharding (AxisType, jax.set_mesh)",
  ),
]

C = qsgd_optax.Circuit
CIRCUITS = {
  "default": C(),
  "chain": C(entanglement="chain"),
  "ring": C(entanglement="ring"),
  "paper": C(entanglement="chain", layers=2),
  "pauli": C(entanglement="ring", backend="pauli"),
  "statevector": C(entanglement="chain", backend="statevector"),
  "leading": C(entanglement="chain", coverage="leading"),
  "shots": C(entanglement="chain", shots=64),
  "5-qubits": C(n_qubits=5, entanglement="ring"),
}
# Mesh shape, axis names, and the spec of both leaves, w (64, 96) and v (16, 40).
# Sharded on the last axis, each device holds 12 or 24 of w's 96 columns (whole
# groups of 4) but 5 or 10 of v's 40, so v's groups straddle devices.
LAYOUTS = {
  "leading": ((8,), ("x",), P("x", None)),
  "last": ((8,), ("x",), P(None, "x")),
  "2d": ((2, 4), ("data", "model"), P("data", "model")),
  "2d-last": ((2, 4), ("data", "model"), P(None, ("data", "model"))),
  "replicated": ((8,), ("x",), P()),
}
COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "all-reduce", "reduce-scatter")


def explicit_mesh(layout):
  shape, names, _ = LAYOUTS[layout]
  return jax.make_mesh(shape, names, axis_types=(AxisType.Explicit,) * len(names))


def tree(seed):
  shapes = {"w": (64, 96), "v": (16, 40)}
  keys = dict(zip(shapes, jax.random.split(jax.random.PRNGKey(seed), len(shapes))))
  return {k: jax.random.normal(keys[k], s) for k, s in shapes.items()}


def step(tx):
  def run(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return run


@functools.cache
def unsharded(name, form=None, grouping=None):
  tx = optimizer(name, form)
  params, grads = tree(0), tree(1)
  with forced(grouping):
    return jax.jit(step(tx))(params, tx.init(params), grads)


def optimizer(name, form=None):
  circuit, key = CIRCUITS[name], jax.random.PRNGKey(7)
  if form is None:
    return qsgd_optax.qsgd(1e-2, quantum_weight=0.5, circuit=circuit, key=key)
  if form in qsgd_optax.PLACEMENTS:
    return qsgd_optax.qsgd(1e-2, quantum_weight=0.5, placement=form, circuit=circuit, key=key)
  if form == "scale_by_qsgd":
    return optax.chain(
      qsgd_optax.scale_by_qsgd(quantum_weight=0.5, circuit=circuit, key=key), optax.scale(-1e-2)
    )
  assert form == "superpose"
  return optax.chain(qsgd_optax.superpose(0.5, circuit, key=key), optax.adamw(1e-2))


def sharded_step(name, layout, form=None, grouping=None):
  """The compiled step's text and outputs, on explicitly sharded params and grads."""
  tx = optimizer(name, form)
  mesh = explicit_mesh(layout)
  with jax.set_mesh(mesh), forced(grouping):
    put = lambda t: jax.device_put(t, NamedSharding(mesh, LAYOUTS[layout][2]))
    params, grads = put(tree(0)), put(tree(1))
    state = tx.init(params)
    compiled = jax.jit(step(tx), donate_argnums=()).lower(params, state, grads).compile()
    new_params, new_state = compiled(params, state, grads)
  return compiled.as_text(), params, new_params, new_state


def check_equal_and_placed(name, layout, form=None, grouping=None):
  hlo, params, new_params, new_state = sharded_step(name, layout, form, grouping)
  ref_params, ref_state = unsharded(name, form, grouping)
  for k in params:
    ref = np.asarray(ref_params[k])
    ulps = 4 * np.finfo(np.float32).eps * np.abs(ref).max()
    np.testing.assert_allclose(np.asarray(new_params[k]), ref, rtol=0, atol=ulps, err_msg=k)
    assert new_params[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim), k
  for moment in ("mu", "nu"):
    got, ref = optax.tree.get(new_state, moment), optax.tree.get(ref_state, moment)
    for k in params:
      np.testing.assert_allclose(np.asarray(got[k]), np.asarray(ref[k]), rtol=1e-6, atol=1e-9)
      assert got[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim), (moment, k)
  return hlo, {op: hlo.count(f" {op}(") + hlo.count(f" {op}-start(") for op in COLLECTIVES}


def misaligned(layout):
  """Whether v's last-axis shards (40 columns over the last axis's devices) split groups."""
  spec = LAYOUTS[layout][2]
  return len(spec) > 0 and spec[-1] is not None


def moved(counts):
  return {op for op, c in counts.items() if c}


# Each circuit on one layout, every layout at least once; the last-axis layouts
# are the ones that need per-shard work.
PAIRS = [
  ("default", "replicated"),
  ("chain", "leading"),
  ("ring", "last"),
  ("paper", "2d-last"),
  ("pauli", "2d"),
  ("statevector", "2d-last"),
  ("leading", "2d"),
  ("shots", "last"),
  ("5-qubits", "2d-last"),
]
# What reads across the leaf runs as under AxisType.Auto, with the same
# communication: the leading coverage sums its n entries over the devices
# (an all-reduce of n values), the sampler's loop agrees on when to stop (an
# all-reduce of one bool).
SMALL_ALL_REDUCES = {"leading", "shots"}


@pytest.mark.parametrize(("name", "layout"), PAIRS, ids=[f"{n}-{l}" for n, l in PAIRS])
def test_every_circuit_under_explicit_sharding(name, layout):
  """The CPU's formulation: equal to the unsharded step, shardings kept, and
  communication only to gather the last axis where its shards split groups."""
  hlo, counts = check_equal_and_placed(name, layout)
  allowed = set()
  if misaligned(layout) and not CIRCUITS[name].evaluation().elementwise:
    allowed.add("all-gather")
  if name in SMALL_ALL_REDUCES:
    allowed.add("all-reduce")
    for shape in re.findall(r"= (\w+\[[\d,]*\])\S* all-reduce", hlo):
      assert shape in ("pred[]", f"f32[{CIRCUITS[name].n_qubits}]"), shape
  assert moved(counts) <= allowed, counts


@pytest.mark.parametrize("grouping", sorted(GROUPINGS))
def test_every_formulation_under_explicit_sharding(grouping, name="chain", layout="2d"):
  """What the GPU ("shifted-in-groups") and the TPU ("shifted-stored") compile, traced here:
  no communication but one all-gather of the leaf whose shards split groups."""
  _, counts = check_equal_and_placed(name, layout, grouping=grouping)
  assert moved(counts) <= {"all-gather"}, counts
  assert counts["all-gather"] == 1, counts


@pytest.mark.parametrize("form", ["update", "direction", "scale_by_qsgd", "superpose"])
def test_every_optimizer_form_under_explicit_sharding(form):
  _, counts = check_equal_and_placed("chain", "2d", form)
  assert moved(counts) <= {"all-gather"}, counts


def test_groups_aligned_on_every_shard_move_nothing():
  """A leaf whose every last-axis shard holds whole groups: no collective at
  all, in every formulation (the partitioner sees per-shard work)."""
  mesh = explicit_mesh("2d-last")
  tx = optimizer("paper")
  with jax.set_mesh(mesh):
    p = jax.device_put(jnp.ones((16, 96)), NamedSharding(mesh, LAYOUTS["2d-last"][2]))
    for grouping in sorted(GROUPINGS):
      with forced(grouping):
        hlo = jax.jit(step(tx)).lower(p, tx.init(p), p).compile().as_text()
      assert not any(f" {op}" in hlo for op in COLLECTIVES), grouping


def test_make_mesh_default_without_set_mesh():
  """A new user's sharding: ``jax.make_mesh`` with its default axis types, arrays placed on
  it, no ``jax.set_mesh``, the TPU's formulation forced. Where the default is explicit (jax
  0.10.2, 0.12.1) the circuits run per shard: no collective. Where it is automatic (jax
  0.7.1) the partitioner exchanges halos for the whole-axis shifts. The values are the
  unsharded ones either way."""
  mesh = jax.make_mesh((8,), ("x",))
  explicit = mesh.axis_types == (AxisType.Explicit,)
  assert explicit or mesh.axis_types == (AxisType.Auto,), mesh.axis_types
  tx = optimizer("chain")
  put = lambda t: jax.device_put(t, NamedSharding(mesh, P(None, "x")))
  params, grads = {"w": tree(0)["w"]}, {"w": tree(1)["w"]}
  with forced("shifted-stored"):
    compiled = jax.jit(step(tx)).lower(put(params), tx.init(put(params)), put(grads)).compile()
    ref, _ = jax.jit(step(tx))(params, tx.init(params), grads)
  found = {op for op in COLLECTIVES if f" {op}" in compiled.as_text()}
  assert found == (set() if explicit else {"collective-permute"}), (jax.__version__, found)
  got, _ = compiled(put(params), tx.init(put(params)), put(grads))
  ulps = 4 * np.finfo(np.float32).eps * np.abs(np.asarray(ref["w"])).max()
  np.testing.assert_allclose(np.asarray(got["w"]), np.asarray(ref["w"]), rtol=0, atol=ulps)


def test_explicit_sharding_example_runs_on_8_devices(monkeypatch, capsys):
  """examples/explicit_sharding.py as a script: the loss falls, the state is
  sharded like the params."""
  out = run_example("explicit_sharding.py", monkeypatch, capsys)
  losses = [float(x) for x in re.findall(r"loss (\S+)", out)]
  assert len(losses) == 5 and losses[-1] < losses[0] / 10, out
  assert "mesh {'data': 2, 'fsdp': 4}, axis types ['Explicit', 'Explicit']" in out, out
  assert "first weight float32[32,256@fsdp], its Adam first moment float32[32,256@fsdp]" in out, out
