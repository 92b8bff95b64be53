import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import reference

from qsgd_optax import Circuit, Gates, superpose
from qsgd_optax._src import circuit as circuit_module
from qsgd_optax.backends import auto_backend, pauli, pennylane, select, statevector
from qsgd_optax.backends.analytic import reduce_turns

# Custom CNOT patterns per n_qubits: reversed, repeated and crossing pairs.
CUSTOM = {
  2: [(1, 0), (0, 1), (1, 0)],
  3: [(2, 0), (0, 1)],
  4: [(3, 1), (0, 2), (1, 0)],
  5: [(4, 0), (2, 3), (0, 2), (1, 4)],
  6: [(5, 2), (0, 3), (3, 1), (4, 0)],
  7: [(6, 3), (1, 5), (2, 0), (5, 4)],
  8: [(7, 1), (2, 6), (4, 3), (0, 5), (6, 7)],
}
# Largest n_qubits per number of layers for the numpy check of the compiled
# form (compiling stays well under a second; term counts up to ~2e5).
MAX_N = {1: 8, 2: 8, 3: 6, 4: 4}


def config_id(config):
  n, ent, layers = config
  return f"n{n}-{ent if isinstance(ent, (str, type(None))) else 'custom'}-L{layers}"


def grid():
  configs = [(1, None, layers) for layers in range(1, 5)]
  for layers, top in MAX_N.items():
    for n in range(2, top + 1):
      configs += [(n, "chain", layers), (n, "ring", layers), (n, CUSTOM[n], layers)]
  return configs


def dense(circuit, theta):
  return np.array(
    [reference.expectations(circuit.n_qubits, circuit.cnots, circuit.layers, r) for r in theta]
  )


def numpy_eval(compiled, theta):
  """float64 numpy evaluation of the compiled monomials (no JAX)."""
  phi = np.pi * np.asarray(theta, np.float64)
  s, c = np.sin(phi), np.cos(phi)  # (rows, n)
  a, b = compiled.exps[..., 0], compiled.exps[..., 1]  # (T, n)
  mono = np.prod(s[:, None, :] ** a[None] * c[:, None, :] ** b[None], axis=-1)  # (rows, T)
  out = np.zeros((theta.shape[0], compiled.n_qubits))
  np.add.at(out.T, compiled.output, (compiled.coef[None] * mono).T)
  return out


def angles(seed, rows, n, dtype=np.float32):
  """Uniform turns, a few huge ones (even integers in float32) and non-finite ones."""
  rng = np.random.default_rng(seed)
  x = rng.uniform(-3, 3, (rows, n))
  flat = x.reshape(-1)
  flat[rng.choice(flat.size, min(3, flat.size), replace=False)] = [1e30, -3e7, 2.5][
    : min(3, flat.size)
  ]
  if flat.size > 4:
    flat[rng.choice(flat.size, 2, replace=False)] = [np.nan, -np.inf]
  return x.astype(dtype)


def test_cnot_table_is_cnot_conjugation():
  paulis = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])]
  cnot = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
  assert len(pauli.CNOT_TABLE) == 16
  for (a, b), (sign, a2, b2) in pauli.CNOT_TABLE.items():
    got = cnot @ np.kron(paulis[a], paulis[b]) @ cnot
    np.testing.assert_allclose(got, sign * np.kron(paulis[a2], paulis[b2]), err_msg=f"{a}{b}")


@pytest.mark.parametrize("config", grid(), ids=config_id)
def test_compiled_form_matches_dense_reference(config):
  circuit = Gates.build(*config)
  compiled = pauli.compile_circuit(circuit, max_terms=1 << 20)
  theta = np.random.default_rng(circuit.n_qubits * 7 + circuit.layers).uniform(
    -1, 1, (3, circuit.n_qubits)
  )
  np.testing.assert_allclose(numpy_eval(compiled, theta), dense(circuit, theta), atol=1e-12)
  assert compiled.terms == pauli.term_count(circuit, max_terms=1 << 20) > 0
  assert np.all(compiled.coef != 0)


@pytest.mark.parametrize("n", range(2, 9))
def test_term_counts(n):
  assert pauli.term_count(Gates.build(n, "chain", 2)) == 2 ** (n + 1) - 2
  assert pauli.term_count(Gates.build(n, "chain", 1)) == n
  assert pauli.term_count(Gates.build(n, "ring", 1)) == n
  # Without CNOTs every qubit is alone: the same count per qubit.
  for layers in (1, 2, 3):
    one = pauli.term_count(Gates.build(1, None, layers))
    assert pauli.term_count(Gates.build(n, None, layers)) == n * one


def test_term_limit():
  circuit = Gates.build(5, "ring", 3)
  assert pauli.term_count(circuit, max_terms=100) is None
  with pytest.raises(pauli.TermLimitError, match="100"):
    pauli.compile_circuit(circuit, max_terms=100)


def test_deep_circuits_are_refused_not_wrapped():
  # Deep enough, the integer coefficients, past 127 layers the uint8 powers,
  # would overflow: both raise, and auto falls back to the simulator. Two
  # CNOTs that cancel keep the terms few (thousands) while the coefficients
  # grow as fast as in any circuit: the overflow comes in a fraction of a
  # second (the 2-qubit chain gets there only past ~8M terms, minutes of numpy).
  deep = Gates.build(2, [(0, 1), (0, 1)], 130)
  with pytest.raises(pauli.TermLimitError, match="overflow"):
    pauli.compile_circuit(deep, max_terms=10**7)
  assert auto_backend(deep) == "statevector"
  assert auto_backend(Gates.build(2, "chain", 130)) == "statevector"
  exps = np.zeros((1, 2, 2), np.uint8)
  exps[0, 0, 0] = 255
  with pytest.raises(pauli.TermLimitError, match="254"):
    pauli._Terms(np.zeros(1, np.int64), np.zeros((1, 2), np.uint8), exps, np.ones(1, np.int64), 10)


JNP_CONFIGS = [
  (1, None, 2),
  (2, "chain", 4),
  (3, "ring", 3),
  (4, "chain", 1),
  (4, "chain", 2),
  (4, CUSTOM[4], 3),
  (5, "ring", 2),
  (6, "ring", 1),
  (7, CUSTOM[7], 2),
  (8, CUSTOM[8], 2),
]


@functools.cache
def jitted(circuit):
  return jax.jit(lambda t: pauli.expectations(circuit, reduce_turns(t)))


@pytest.mark.parametrize("config", JNP_CONFIGS, ids=config_id)
def test_float32_matches_references(config):
  circuit = Gates.build(*config)
  n = circuit.n_qubits
  theta = angles(n, 6, n)
  got = np.asarray(jitted(circuit)(jnp.asarray(theta)))
  assert got.dtype == np.float32 and np.all(np.isfinite(got))
  np.testing.assert_allclose(got, dense(circuit, reference.reduced(theta)), atol=1e-5)
  if n <= 5:  # Jitted: one compile instead of a dispatch per gate.
    sv = jax.jit(functools.partial(statevector.expectations, circuit))
    np.testing.assert_allclose(got, sv(reduce_turns(jnp.asarray(theta))), atol=1e-5)


@pytest.mark.parametrize("config", [(3, "ring", 2), (4, CUSTOM[4], 2)], ids=config_id)
def test_matches_pennylane(config):
  circuit = Gates.build(*config)
  n = circuit.n_qubits
  theta = angles(n + 1, 3, n)
  t = reduce_turns(jnp.asarray(theta))
  got = jitted(circuit)(jnp.asarray(theta))
  want = jax.jit(functools.partial(pennylane.expectations, circuit))(t)
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize(
  "config", [(3, "ring", 3), (4, "chain", 2), (6, CUSTOM[6], 2)], ids=config_id
)
def test_float64(config, x64):
  circuit = Gates.build(*config)
  n = circuit.n_qubits
  theta = angles(2 * n, 5, n, np.float64)
  got = np.asarray(
    jax.jit(lambda t: pauli.expectations(circuit, reduce_turns(t)))(jnp.asarray(theta))
  )
  assert got.dtype == np.float64
  np.testing.assert_allclose(got, dense(circuit, reference.reduced(theta)), atol=1e-12)


def test_batch_shapes():
  circuit = Gates.build(3, "chain", 2)
  theta = np.random.default_rng(0).uniform(-1, 1, (2, 5, 3)).astype(np.float32)
  got = pauli.expectations(circuit, jnp.asarray(theta))
  assert got.shape == theta.shape
  want = dense(circuit, theta.reshape(-1, 3)).reshape(theta.shape)
  np.testing.assert_allclose(got, want, atol=1e-5)
  single = pauli.expectations(circuit, jnp.asarray(theta[0, 0]))
  np.testing.assert_allclose(single, want[0, 0], atol=1e-5)


SHAPES = {"scalar": (), "vec": (7,), "mat": (3, 10), "cube": (2, 3, 5), "exact": (2, 8)}


def tree(seed, dtype, scale=3.0):
  rng = np.random.default_rng(seed)
  params = {k: rng.uniform(-scale, scale, s) for k, s in SHAPES.items()}
  params["vec"][[1, 4]] = [1e30, np.nan]
  params["mat"][1, [0, 6]] = [np.inf, -1e29]
  grads = {k: rng.normal(size=s) for k, s in SHAPES.items()}
  cast = lambda t: {k: jnp.asarray(v, dtype) for k, v in t.items()}
  return cast(params), cast(grads)


# float32: test_superpose.py::test_matches_float64_reference[pauli-n4-chain-L2-*].
@pytest.mark.parametrize("dtype, tol", [(jnp.bfloat16, 2e-2)], ids=["bfloat16"])
@pytest.mark.parametrize("coverage", ["all", "leading"])
def test_superpose_matches_reference(dtype, tol, coverage):
  n, ent, layers = 4, "chain", 2  # The paper's circuit.
  circuit = Gates.build(n, ent, layers)
  params, grads = tree(3, dtype)
  tx = superpose(0.7, Circuit(n, ent, layers, coverage=coverage, backend="pauli"))
  out, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  want = reference.modulate_tree(grads, params, 0.7, circuit, coverage)
  for k in grads:
    assert out[k].dtype == dtype and out[k].shape == grads[k].shape
    assert np.all(np.isfinite(np.float64(out[k]))), k
    np.testing.assert_allclose(np.float64(out[k]), want[k], rtol=tol, atol=tol, err_msg=k)


# Circuits of test_superpose.py's reference cases meet the float64 reference there.
@pytest.mark.parametrize("config", [(5, CUSTOM[5], 2)], ids=config_id)
def test_superpose_backends_agree(config):
  n, ent, layers = config
  params, grads = tree(n, jnp.float32)
  params, grads = ({k: t[k] for k in ("mat", "cube")} for t in (params, grads))
  outs = {}
  for backend in ("pauli", "statevector", "auto"):
    tx = superpose(0.5, Circuit(n, ent, layers, backend=backend))
    outs[backend] = jax.jit(tx.update)(grads, tx.init(params), params)[0]
  for backend in ("statevector", "auto"):
    for k in grads:
      np.testing.assert_allclose(outs[backend][k], outs["pauli"][k], atol=1e-5, err_msg=backend)


def test_non_finite_parameters_do_not_spread():
  n = 4
  theta = jnp.array([0.3, jnp.nan, -0.2, 0.9, jnp.inf, 0.1, 0.7, -1e30])
  tx = superpose(1.0, Circuit(n, "chain", 2, backend="pauli"))
  out, _ = jax.jit(tx.update)(jnp.ones(8), tx.init(theta), theta)
  assert np.all(np.isfinite(out))
  circuit = Gates.build(n, "chain", 2)
  want = reference.modulate(np.ones(8), reference.reduced(theta), 1.0, n, circuit.cnots, 2)
  np.testing.assert_allclose(out, want, atol=1e-6)
  # A product circuit gives a zero modulation for them.
  tx = superpose(1.0, Circuit(n, layers=2, backend="pauli"))
  out, _ = jax.jit(tx.update)(jnp.ones(8), tx.init(theta), theta)
  np.testing.assert_array_equal(np.asarray(out)[[1, 4, 7]], 1.0)


def test_optimizer_step_matches_statevector():
  params = {"w": jnp.linspace(-2, 2, 13), "b": jnp.zeros((2, 3))}
  grads = jax.tree.map(lambda p: jnp.cos(3 * p) + 0.1, params)
  outs = []
  for backend in ("pauli", "statevector"):
    tx = optax.chain(superpose(0.5, Circuit(4, "ring", 2, backend=backend)), optax.adam(0.1))
    state = tx.init(params)
    p = params
    for _ in range(3):
      updates, state = jax.jit(tx.update)(grads, state, p)
      p = optax.apply_updates(p, updates)
    outs.append(p)
  for k in params:
    np.testing.assert_allclose(outs[0][k], outs[1][k], atol=1e-5)


def test_auto_backend():
  assert auto_backend(Gates.build(4, None, 3)) == "analytic"
  assert auto_backend(Gates.build(4, "ring", 1)) == "analytic"
  assert auto_backend(Gates.build(4, "chain", 2)) == "pauli"
  assert auto_backend(Gates.build(12, "ring", 3)) == "statevector"
  assert auto_backend(Gates.build(24, "chain", 2)) == "statevector"


def test_select_pauli_fails_at_build_time(monkeypatch):
  monkeypatch.setattr(pauli, "MAX_TERMS", 50)
  circuit_module._evaluation.cache_clear()  # A Circuit's backend is built once per process.
  with pytest.raises(pauli.TermLimitError):
    select(Gates.build(4, "ring", 3), "pauli")
  with pytest.raises(pauli.TermLimitError):
    superpose(0.5, Circuit(4, "ring", 3, backend="pauli"))


def test_no_qubit_limit_for_small_forms():
  """24 qubits are out of the dense simulators' reach, not of a small form:
  a one-layer chain has <Z_i> = prod_{j <= i} (-sin(pi t_j)), 24 terms."""
  circuit = Gates.build(24, "chain", 1)
  theta = np.random.default_rng(5).uniform(-1, 1, (2, 24)).astype(np.float32)
  got = pauli.expectations(circuit, jnp.asarray(theta))
  want = np.cumprod(-np.sin(np.pi * theta.astype(np.float64)), axis=-1)
  np.testing.assert_allclose(got, want, atol=1e-6)
