"""Every built-in circuit can sit inside Adam's one fused loop.

XLA:GPU compiles ``optax.adamw`` plus ``apply_updates`` into one loop fusion.
A contraction, gather, scatter, loop or reduction in the traced step always
ends such a fusion, so the step of ``superpose`` and of ``qsgd`` must have
none, for every built-in circuit, placement and grouping formulation. This is
necessary, not sufficient: only the compiled HLO shows the fusion itself
(``tests/test_accelerators.py`` reads XLA's GPU and TPU programs).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jaxprs import primitives

import qsgd_optax
from qsgd_optax import Gates, grouping
from qsgd_optax.backends import select

# Primitives that end a loop fusion (reductions over the group axis included).
FUSION_BREAKERS = ("dot_general", "gather", "scatter", "while", "scan", "cond", "reduce_", "cum")
CIRCUITS = {
  "product": qsgd_optax.Circuit(),
  "chain": qsgd_optax.Circuit(entanglement="chain"),
  "ring": qsgd_optax.Circuit(entanglement="ring"),
  "paper": qsgd_optax.Circuit(entanglement="chain", layers=2),
}
# A last axis that divides by 4 and one that does not (padded groups).
PARAMS = {"w": jnp.ones((3, 8)), "odd": jnp.ones((5, 7)), "b": jnp.ones(())}


def breakers(fn, *args):
  """The fusion breakers in ``fn``'s program. A ``cond`` on the platform
  (``jax.lax.platform_dependent``) is not one: lowering keeps one branch."""
  eqns = list(primitives(jax.make_jaxpr(fn)(*args)))
  platform = {id(e.outvars[0]) for name, e in eqns if name == "platform_index"}
  on_platform = lambda name, e: name == "cond" and id(e.invars[0]) in platform
  return sorted(
    {name for name, e in eqns if name.startswith(FUSION_BREAKERS) and not on_platform(name, e)}
  )


def donated_step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


@pytest.fixture(params=[None, *grouping.GROUPINGS])  # None: each platform's own.
def formulation(request):
  with grouping.forced(request.param):
    yield request.param


@pytest.mark.parametrize("circuit", list(CIRCUITS))
@pytest.mark.parametrize("placement", qsgd_optax.PLACEMENTS)
def test_qsgd_step_has_nothing_that_ends_a_fusion(circuit, placement, formulation):
  tx = qsgd_optax.qsgd(1e-3, placement=placement, circuit=CIRCUITS[circuit])
  assert not breakers(donated_step(tx), PARAMS, tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("circuit", list(CIRCUITS))
def test_composed_step_has_nothing_that_ends_a_fusion(circuit, formulation):
  tx = optax.chain(qsgd_optax.superpose(0.5, CIRCUITS[circuit]), optax.adamw(1e-3))
  assert not breakers(donated_step(tx), PARAMS, tx.init(PARAMS), PARAMS)


def test_the_guard_sees_a_reduction_over_the_group_axis():
  """The guard can fail: a group's mean, as a reduction, is caught."""
  grouped = lambda x: jnp.mean(x.reshape(-1, 4), axis=-1)
  assert breakers(grouped, jnp.ones(8)) == ["reduce_sum"]
  assert breakers(lambda x: x[jnp.array([1, 0])], jnp.ones(2)) == ["gather"]


@pytest.mark.parametrize("circuit", ["chain", "ring", "paper"])
@pytest.mark.parametrize("shape", [(), (7,), (3, 8), (2, 3, 9)], ids=str)
def test_groupings_give_the_same_values(circuit, shape):
  """Every formulation evaluates the same arithmetic per entry."""
  rng = np.random.default_rng(1)  # NumPy: an eager jax.random call compiles per shape.
  theta, g = (jnp.asarray(rng.standard_normal(shape), jnp.float32) for _ in range(2))
  outs = {}
  for name in grouping.GROUPINGS:
    with grouping.forced(name):
      # A new transformation each time: jax.jit caches by function, and the
      # formulation is read when the step is traced.
      tx = qsgd_optax.superpose(0.5, CIRCUITS[circuit])
      outs[name] = jax.jit(tx.update)(g, tx.init(theta), theta)[0]
  for name, out in outs.items():
    assert out.shape == shape and out.dtype == g.dtype
    assert jnp.array_equal(out, outs["columns"]), name


@pytest.mark.parametrize(
  "backend, config",
  [("analytic", (4, "chain", 1)), ("analytic", (5, "ring", 1))]
  + [("pauli", c) for c in [(3, "ring", 3), (4, "chain", 2), (5, [(4, 0), (2, 3), (0, 2)], 2)]],
)
def test_columns_of_some_qubits_are_those_of_all(backend, config):
  """The neighbour-read formulations ask a closed form for one qubit's column
  at a time: it returns exactly that column of all of them."""
  columns_of = select(Gates.build(*config), backend).columns
  n = config[0]
  rng = np.random.default_rng(0)
  columns = [jnp.asarray(rng.uniform(-1, 1, (3, 5)), jnp.float32) for _ in range(n)]
  every = columns_of(columns, None)
  for qubits in [(k,) for k in range(n)] + [(n - 1, 0)]:
    some = columns_of(columns, qubits)
    assert len(some) == len(qubits)
    for k, z in zip(qubits, some):
      np.testing.assert_array_equal(z, every[k])


@pytest.mark.parametrize("platform", ["cpu", "cuda", "rocm", "tpu"])
def test_each_platform_compiles_its_grouping(platform):
  """The step lowered for each platform holds that platform's formulation
  only: "columns" and "shifted-in-groups" view the angles as (groups, 4), and
  "shifted-in-groups" pads the view of the bfloat16 parameters by 3 on each
  side; "shifted-stored" pads them along the whole axis, with no view."""
  tx = qsgd_optax.superpose(0.5, CIRCUITS["chain"])
  theta = jnp.ones((3, 8), jnp.bfloat16)
  step = jax.jit(lambda g, s, p: tx.update(g, s, p)[0])
  text = step.trace(theta, tx.init(theta), theta).lower(lowering_platforms=(platform,)).as_text()
  want = grouping.PLATFORM_GROUPING.get(platform, grouping.PLATFORM_GROUPING["default"])
  pads = set(re.findall(r"stablehlo\.pad .*-> tensor<(3x14xbf16|3x2x10xbf16)>", text))
  assert ("tensor<3x2x4xf32>" in text) == (want != "shifted-stored"), want
  expected = {"shifted-stored": {"3x14xbf16"}, "shifted-in-groups": {"3x2x10xbf16"}}
  assert pads == expected.get(want, set()), (want, pads)


def test_a_forced_formulation_is_checked_and_scoped():
  """Inside ``forced`` every platform takes that formulation; after it, the
  platform's own again (the CPU's "columns" reshapes to (groups, 4))."""
  with pytest.raises(ValueError, match="name must be one of"), grouping.forced("strided"):
    pass
  theta = jnp.ones((3, 8))

  def lowered():
    tx = qsgd_optax.superpose(0.5, CIRCUITS["chain"])
    step = jax.jit(lambda g, s, p: tx.update(g, s, p)[0])
    return step.lower(theta, tx.init(theta), theta).as_text()

  with grouping.forced("shifted-stored"):
    assert "tensor<3x2x4xf32>" not in lowered()
  assert "tensor<3x2x4xf32>" in lowered()
