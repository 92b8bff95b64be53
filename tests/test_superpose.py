import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import reference

from qsgd_optax import Circuit, Gates, superpose
from qsgd_optax.backends import statevector

BACKENDS = ["analytic", "statevector", "pennylane"]
SHAPES = {"scalar": (), "vec": (5,), "mat": (3, 7), "cube": (2, 3, 4), "exact": (2, 8)}


def supported(backend, config):
  return backend != "analytic" or Gates.build(*config).has_closed_form


def random_tree(seed, dtype=jnp.float32, shapes=SHAPES, scale=2.0):
  rng = np.random.default_rng(seed)
  params = {k: jnp.asarray(rng.uniform(-scale, scale, s), dtype) for k, s in shapes.items()}
  grads = {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in shapes.items()}
  return params, grads


def run(tx, grads, params, steps=1):
  state = tx.init(params)
  update = jax.jit(tx.update)
  for _ in range(steps):
    out, state = update(grads, state, params)
  return out, state


def expected(grads, params, weight, config, coverage="all"):
  circuit = Gates.build(*config)
  return reference.modulate_tree(grads, params, weight, circuit, coverage)


# PennyLane's backend meets the reference on every configuration in
# test_pennylane_backend.py; here, through superpose, on a product and an entangled one.
PENNYLANE_CONFIGS = [(3, None, 1), (4, "chain", 2)]
CASES = [
  (b, c) for b in ("analytic", "pauli", "statevector") for c in reference.CONFIGS if supported(b, c)
] + [("pennylane", c) for c in PENNYLANE_CONFIGS]


# coverage="leading" evaluates the same backend on one group (the leaf's first
# n entries, padded past its end): a product and an entangled circuit per backend.
LEADING = {"analytic": (5, "ring", 1), "pauli": (4, "chain", 2), "statevector": (3, "ring", 3)}
COVERED = [(b, c, "all") for b, c in CASES] + [
  (b, c, "leading") for b, c in CASES if b == "pennylane" or c in ((3, None, 1), LEADING[b])
]


@pytest.mark.parametrize(
  "backend, config, coverage",
  COVERED,
  ids=[f"{b}-{reference.config_id(c)}-{cov}" for b, c, cov in COVERED],
)
def test_matches_float64_reference(backend, config, coverage):
  n, ent, layers = config
  params, grads = random_tree(n + layers)
  circuit = Circuit(n, ent, layers, coverage=coverage, backend=backend)
  tx = superpose(0.7, circuit)
  out, _ = run(tx, grads, params)
  want = expected(grads, params, 0.7, config, coverage)
  for k in grads:
    assert out[k].shape == grads[k].shape and out[k].dtype == jnp.float32
    np.testing.assert_allclose(out[k], want[k], atol=1e-5, rtol=1e-5, err_msg=k)


def test_paper_rule_without_entanglement():
  params, grads = random_tree(3, scale=50.0)
  out, _ = run(superpose(0.5, Circuit(n_qubits=4)), grads, params)
  for k in grads:
    want = grads[k] + 0.5 * np.sin(np.pi * np.float64(params[k])) * grads[k]
    np.testing.assert_allclose(out[k], want, rtol=2e-6, atol=1e-6)


DTYPES = {
  "bfloat16": (jnp.bfloat16, 2e-2),
  "float16": (jnp.float16, 2e-3),
  "float32": (jnp.float32, 1e-5),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_dtypes(backend, dtype):
  dt, tol = DTYPES[dtype]
  params, grads = random_tree(11, dt)
  tx = superpose(0.5, Circuit(4, "ring", backend=backend))
  out, state = run(tx, grads, params)
  want = expected(grads, params, 0.5, (4, "ring", 1))
  for k in grads:
    assert out[k].dtype == dt
    np.testing.assert_allclose(np.float64(out[k]), want[k], rtol=tol, atol=tol)
  assert state.count.dtype == jnp.int32 and state.key.dtype == jnp.uint32


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64(backend, x64):
  params, grads = random_tree(12, jnp.float64)
  out, _ = run(superpose(0.5, Circuit(3, "chain", backend=backend)), grads, params)
  want = expected(grads, params, 0.5, (3, "chain", 1))
  for k in grads:
    assert out[k].dtype == jnp.float64
    np.testing.assert_allclose(out[k], want[k], rtol=1e-12, atol=1e-12)


def test_pads_never_leak():
  """A group's padding only adds qubits after the real ones, at angle 0."""
  params = {"w": jnp.array([0.5, 0.25, 0.5])}
  grads = {"w": jnp.ones(3)}
  out, _ = run(superpose(1.0, Circuit(4, "chain")), grads, params)
  # chain: m_k = (-1)^k prod_{j<=k} sin(pi t_j); the pad (qubit 3) is dropped.
  s = np.sin(np.pi * np.array([0.5, 0.25, 0.5]))
  np.testing.assert_allclose(
    out["w"], 1 + np.array([s[0], -s[0] * s[1], s[0] * s[1] * s[2]]), atol=1e-6
  )


def test_leading_touches_only_first_entries():
  params, grads = random_tree(5, shapes={"m": (3, 7), "v": (2,)})
  out, _ = run(superpose(0.5, Circuit(4, coverage="leading")), grads, params)
  np.testing.assert_array_equal(out["m"].reshape(-1)[4:], grads["m"].reshape(-1)[4:])
  assert not np.allclose(out["m"].reshape(-1)[:4], grads["m"].reshape(-1)[:4])
  assert not np.allclose(out["v"], grads["v"])


def test_pass_through_leaves():
  params = {
    "f": jnp.ones(3) * 0.5,
    "i": jnp.arange(3),
    "b": jnp.array([True]),
    "c": jnp.ones(2, jnp.complex64),
    "n": None,
    "e": jnp.zeros((0, 4)),
    "nested": {"deep": [jnp.ones(2) * 0.5, None]},
  }
  grads = jax.tree.map(lambda x: x, params)
  out, _ = run(superpose(1.0), grads, params)
  for k in ("i", "b", "c", "e"):
    assert out[k] is grads[k] or np.array_equal(out[k], grads[k])
    assert out[k].dtype == grads[k].dtype
  assert out["n"] is None and out["nested"]["deep"][1] is None
  np.testing.assert_allclose(out["f"], 2 * params["f"])
  np.testing.assert_allclose(out["nested"]["deep"][0], 2 * params["f"][:2])


def test_empty_tree():
  out, state = run(superpose(), {}, {})
  assert out == {} and int(state.count) == 1


def test_schedule():
  params, grads = random_tree(4, shapes={"a": (4,)})
  schedule = optax.linear_schedule(0.0, 1.0, 4)
  tx = superpose(schedule)
  state = tx.init(params)
  for step in range(5):
    out, state = jax.jit(tx.update)(grads, state, params)
    want = expected(grads, params, float(schedule(step)), (4, None, 1))["a"]
    np.testing.assert_allclose(out["a"], want, rtol=1e-5, err_msg=str(step))
  assert int(state.count) == 5


def test_apply_if_finite():
  params = {"a": jnp.array([0.5, 0.2])}
  tx = optax.apply_if_finite(optax.chain(superpose(0.5), optax.sgd(0.1)), 2)
  state = tx.init(params)
  out, state = jax.jit(tx.update)({"a": jnp.array([jnp.nan, 1.0])}, state, params)
  np.testing.assert_array_equal(out["a"], 0)
  assert int(state.notfinite_count) == 1
  out, state = jax.jit(tx.update)({"a": jnp.array([1.0, 1.0])}, state, params)
  assert np.all(np.isfinite(out["a"])) and np.any(out["a"] != 0)


def test_no_recompilation_and_extra_args():
  params, grads = random_tree(6, shapes={"mat": SHAPES["mat"]})
  tx = optax.chain(superpose(0.5, Circuit(shots=100)), optax.adamw(1e-3))
  traces = []

  @jax.jit
  def step(params, state):
    traces.append(1)
    updates, state = tx.update(grads, state, params, loss=jnp.ones(()))
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  for _ in range(4):
    params, state = step(params, state)
  assert len(traces) == 1


def test_map_params():
  params = {"a": jnp.ones(5)}
  tx = optax.chain(superpose(), optax.adam(1e-3))
  state = tx.init(params)
  mapped = optax.tree.map_params(tx.init, lambda p: p.astype(jnp.bfloat16), state)
  assert mapped[1][0].mu["a"].dtype == jnp.bfloat16


def test_vmap_over_models():
  params, grads = random_tree(9, shapes={"a": (4, 6)})
  tx = superpose(0.5, Circuit(3, "ring"))
  states = jax.vmap(tx.init)(params)
  out, _ = jax.vmap(tx.update)(grads, states, params)
  want = expected(grads, params, 0.5, (3, "ring", 1))["a"]
  np.testing.assert_allclose(out["a"], want, rtol=1e-5, atol=1e-6)


def test_deterministic():
  # Two leaves: each draws its own shots from the state's key (more only add compile time).
  params, grads = random_tree(10, shapes={"mat": SHAPES["mat"], "scalar": ()})
  for circuit, key in (
    (Circuit(), 0),
    (Circuit(shots=50), 3),
    (Circuit(entanglement="ring", layers=2), 0),
  ):
    a, _ = run(superpose(0.5, circuit, key=key), grads, params, steps=2)
    b, _ = run(superpose(0.5, circuit, key=key), grads, params, steps=2)
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


def test_leaves_of_one_shape_share_one_trace(monkeypatch):
  """A step traces the circuit once per leaf shape and dtype, however many
  leaves share them (a model's layers do), and each leaf still gets its own."""
  from qsgd_optax._src import modulation as module

  traced = []
  real = module.modulation
  counted = lambda circuit, theta, *rest: traced.append(theta.shape) or real(circuit, theta, *rest)
  monkeypatch.setattr(module, "modulation", counted)
  # Shapes no other test uses: a trace of theirs would be reused (clearing jax's
  # caches would recompile everything after this test).
  rng = np.random.default_rng(0)
  params = {f"w{i}": jnp.asarray(rng.uniform(-2, 2, (3, 44)), jnp.float32) for i in range(4)}
  params |= {"b": jnp.ones(43), "h": jnp.ones((3, 44), jnp.bfloat16)}
  tx = superpose(0.5, Circuit(entanglement="chain"))
  out = jax.jit(tx.update)(params, tx.init(params), params)[0]
  assert sorted(traced) == [(3, 44), (3, 44), (43,)]
  for k, p in params.items():
    alone = jax.jit(tx.update)({k: p}, tx.init({k: p}), {k: p})[0][k]
    np.testing.assert_array_equal(out[k], alone, err_msg=k)


def test_shots_sample_binomial_estimates():
  shots = 64
  theta = jnp.full((20_000,), 0.3)
  grads = jnp.ones_like(theta)
  out, state = run(superpose(1.0, Circuit(4, shots=shots), key=1), grads, theta)
  m = np.asarray(out) - 1  # m = 2k/shots - 1 estimates sin(0.3 pi)
  np.testing.assert_allclose(np.round((m + 1) * shots / 2), (m + 1) * shots / 2, atol=1e-4)
  exact = np.sin(0.3 * np.pi)
  std = np.sqrt((1 - exact**2) / shots)  # Var of 2k/n - 1.
  assert abs(m.mean() - exact) < 5 * std / np.sqrt(m.size)
  assert abs(m.std() - std) < 0.05 * std
  other, state2 = run(superpose(1.0, Circuit(4, shots=shots), key=2), grads, theta)
  assert not np.array_equal(out, other)
  assert not np.array_equal(state.key, state2.key)


def test_extreme_values_stay_finite():
  theta = jnp.array([0.0, 1e30, -1e30, 1e-45, 3.4e38, jnp.nan, jnp.inf, 0.5])
  grads = jnp.array([3e38, 3e38, -3e38, 2.0, 1.0, 1.0, 1.0, 3e38])
  for circuit in (Circuit(4), Circuit(4, "ring"), Circuit(4, backend="statevector")):
    out, _ = run(superpose(1.0, circuit), grads, theta)
    assert np.all(np.isfinite(out)), circuit
  out, _ = run(superpose(1.0, Circuit(4)), grads, theta)
  np.testing.assert_array_equal(out[:3], grads[:3])  # sin(pi * theta) = 0
  np.testing.assert_allclose(out[3:5], grads[3:5], rtol=1e-6)
  assert out[7] == np.finfo(np.float32).max  # 2 * 3e38 clipped, not inf.
  f16 = jnp.full((3,), 6e4, jnp.float16)
  out, _ = run(superpose(1.0), f16, jnp.full((3,), 0.5, jnp.float16))
  assert np.all(np.isfinite(out)) and out.dtype == jnp.float16


def test_nan_gradient_does_not_spread():
  theta = jnp.array([0.3, 0.6, -0.2, 0.9])
  grads = jnp.array([jnp.nan, 1.0, 1.0, 1.0])
  out, _ = run(superpose(1.0, Circuit(4, "ring")), grads, theta)
  assert np.isnan(out[0]) and np.all(np.isfinite(out[1:]))
  theta = theta.at[1].set(jnp.nan)
  out, _ = run(superpose(1.0, Circuit(4, "ring")), jnp.ones(4), theta)
  assert np.all(np.isfinite(out))


@pytest.mark.pennylane
def test_custom_qnode_matches_builtin():
  import pennylane as qml

  dev = qml.device("default.qubit", wires=3)

  @qml.qnode(dev, interface="jax")
  def circuit(angles):
    for i in range(3):
      qml.Hadamard(i)
      qml.RY(angles[i], wires=i)
      qml.RZ(angles[i], wires=i)
    qml.CNOT([0, 1])
    qml.CNOT([1, 2])
    return [qml.expval(qml.PauliZ(i)) for i in range(3)]

  params, grads = random_tree(13, shapes={"a": (2, 5)})
  out, _ = run(superpose(0.5, Circuit(3, custom=circuit)), grads, params)
  want = expected(grads, params, 0.5, (3, "chain", 1))["a"]
  np.testing.assert_allclose(out["a"], want, atol=1e-5)


def test_params_required():
  tx = superpose()
  params = {"a": jnp.ones(3)}
  with pytest.raises(ValueError, match="params are required"):
    tx.update(params, tx.init(params))


def _wrong_shape_circuit(angles):
  return angles[:2]


@pytest.mark.parametrize(
  "fields, kwargs, error, match",
  [
    ({"n_qubits": 0}, {}, ValueError, "n_qubits"),
    ({"n_qubits": 2.5}, {}, TypeError, "n_qubits"),
    ({"n_qubits": True}, {}, TypeError, "n_qubits"),
    ({"layers": 0}, {}, ValueError, "layers"),
    ({"backend": "qiskit"}, {}, ValueError, "backend"),
    ({"coverage": "some"}, {}, ValueError, "coverage"),
    ({"entanglement": "star"}, {}, ValueError, "entanglement"),
    ({"shots": 0}, {}, ValueError, "shots"),
    ({"shots": 1.5}, {}, TypeError, "shots"),
    ({"n_qubits": 24, "backend": "statevector"}, {}, ValueError, "GiB"),
    ({"n_qubits": 24, "entanglement": "chain", "layers": 2}, {}, ValueError, "GiB"),
    ({"n_qubits": 24, "backend": "pennylane"}, {}, ValueError, "GiB"),
    ({"entanglement": "chain", "layers": 2, "backend": "analytic"}, {}, ValueError, "closed form"),
    ({"custom": _wrong_shape_circuit}, {}, ValueError, "returned shape"),
    ({"custom": 3}, {}, TypeError, "custom"),
    ({"custom": _wrong_shape_circuit, "backend": "analytic"}, {}, ValueError, "backend"),
    (
      None,
      {"entanglement": "ring", "shots": 8},
      TypeError,
      r"Circuit\(entanglement='ring', shots=8\)",
    ),
  ],
)
def test_bad_input(fields, kwargs, error, match):
  """A bad field fails where the Circuit is written or, if its backend cannot run it,
  where superpose is built; 0.4's circuit keywords at superpose (its other arguments,
  as every optimizer's: test_contract.py)."""
  with pytest.raises(error, match=match):
    superpose(**kwargs) if fields is None else superpose(circuit=Circuit(**fields), **kwargs)


def test_second_argument_is_the_circuit():
  """0.4's superpose(0.3, 4) (n_qubits second) names the new form."""
  with pytest.raises(TypeError, match=r"Circuit\(n_qubits=4\)"):
    superpose(0.3, 4)


def test_analytic_has_no_qubit_limit():
  n = statevector.MAX_QUBITS + 4  # Past the statevector's limit.
  params, grads = random_tree(14, shapes={"a": (3, n)})
  out, _ = run(superpose(0.5, Circuit(n, "chain")), grads, params)
  assert np.all(np.isfinite(out["a"]))
