import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jaxprs import HIGHEST, dot_generals, inexact_dots

from qsgd_optax._src.attention import MultiHeadAttention, ScoreCircuit

COMPARED = ["analytic", "statevector", "pennylane"]  # Pennylane is the reference.
CIRCUITS = [
  dict(),
  dict(depth=1),
  dict(n_qubits=3, depth=3, entanglement="ring"),
  dict(readout="probs"),
  dict(entanglement=None, depth=2),
]


def inputs(circuit, seed=0):
  rng = np.random.default_rng(seed)  # NumPy: an eager jax.random call compiles per shape.
  shape = (circuit.depth, circuit.n_qubits)
  theta, phi = (rng.uniform(-np.pi, np.pi, shape) for _ in range(2))
  s = 3 * rng.standard_normal((2, 3, 4, 5))  # (batch, heads, q, k)
  w = rng.standard_normal(s.shape)
  return tuple(jnp.asarray(a, jnp.float32) for a in (theta, phi, s, w))


@pytest.mark.pennylane  # The reference.
@pytest.mark.parametrize("kw", CIRCUITS, ids=str)
def test_backends_agree_values_and_gradients(kw):
  circuits = {b: ScoreCircuit.build(backend=b, **kw) for b in COMPARED}
  theta, phi, s, w = inputs(circuits["pennylane"])
  loss = lambda c: jax.jit(
    jax.value_and_grad(lambda t, p, s: jnp.sum(w * c.bias(s, t, p)), argnums=(0, 1, 2))
  )
  ref_v, ref_g = loss(circuits["pennylane"])(theta, phi, s)
  for b in ("analytic", "statevector"):
    v, g = loss(circuits[b])(theta, phi, s)
    np.testing.assert_allclose(v, ref_v, rtol=1e-4, atol=1e-4, err_msg=b)
    for a, r in zip(g, ref_g):
      np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4, err_msg=b)


def test_bias_matches_hand_derivation():
  """depth 1, no CNOT: Phi = sum_i <Z_i> = -sum_i sin(theta_i + s)."""
  c = ScoreCircuit.build(n_qubits=3, depth=1, entanglement=None)
  theta, phi, s, _ = inputs(c)
  want = -jnp.sin(theta.reshape(-1) + s[..., None]).sum(-1)
  np.testing.assert_allclose(c.bias(s, theta, phi), want, atol=2e-5)


def test_fourier_degree_is_exact():
  """The series has degree depth * n_qubits: more samples change nothing."""
  c = ScoreCircuit.build(n_qubits=2, depth=2)
  theta, phi, _s, _ = inputs(c, 3)
  f = c.coefficients(theta, phi)
  assert f.shape == (c.degree + 1,)
  grid = jnp.linspace(-np.pi, np.pi, 50)
  from qsgd_optax.backends import statevector

  direct = c._readout(statevector.probabilities(c.gates(), 2, c.angles(grid, theta, phi)))
  np.testing.assert_allclose(c.bias(grid, theta, phi), direct, atol=1e-5)


@pytest.mark.parametrize(
  "bad, match",
  [
    (dict(n_qubits=0), "n_qubits"),
    (dict(n_qubits=30), "n_qubits"),
    (dict(depth=0), "depth"),
    (dict(readout="amplitude"), "readout"),
    (dict(backend="qiskit"), "backend"),
    (dict(entanglement="star"), "entanglement"),
  ],
)
def test_bad_circuit(bad, match):
  with pytest.raises(ValueError, match=match):
    ScoreCircuit.build(**bad)


def test_classical_layer_is_standard_attention():
  layer = MultiHeadAttention(16, 4, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 16))
  qkv = layer.qkv(x).reshape(2, 5, 3, 4, 4)
  q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
  ref = nnx.dot_product_attention(q, k, v).reshape(2, 5, 16)
  np.testing.assert_allclose(layer(x, deterministic=True), layer.out(ref), atol=1e-5)


def test_quantum_layer_trains_its_angles():
  layer = MultiHeadAttention(8, 2, circuit=ScoreCircuit.build(), rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 8))
  mask = jnp.tril(jnp.ones((6, 6), bool))

  def loss(layer):
    return jnp.sum(layer(x, mask, deterministic=True) ** 2)

  @nnx.jit  # One compiled function for the gradient and the unmasked forward pass.
  def grads_and_forward(layer, x):
    return nnx.grad(loss)(layer), layer(x, deterministic=True)

  grads, out = grads_and_forward(layer, x)
  assert grads.theta[...].shape == (2, 4)
  assert float(jnp.abs(grads.theta[...]).sum()) > 0
  assert float(jnp.abs(grads.phi[...]).sum()) > 0
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


def test_dot_walk_reaches_nested_jaxprs():
  @jax.custom_jvp
  def square(y):
    return y @ y

  square.defjvp(lambda p, t: (square(p[0]), t[0] @ p[0] + p[0] @ t[0]))

  def body(c, _):
    return jax.lax.cond(c.sum() > 0, square, lambda y: y, c), jnp.arange(3) @ jnp.arange(3)

  f = jax.jit(lambda x: jax.lax.scan(body, x, None, length=2))
  assert len(list(dot_generals(jax.make_jaxpr(f)(jnp.eye(2))))) == 2
  assert len(inexact_dots(jax.make_jaxpr(f)(jnp.eye(2)))) == 1  # Not the integer one.


@pytest.mark.parametrize("backend", ["analytic", "statevector"])
def test_circuit_contractions_ask_for_full_precision(backend):
  """On GPUs the default matmul precision is TF32: every float contraction of
  the score circuit, forward and backward, must ask for HIGHEST."""
  c = ScoreCircuit.build(n_qubits=2, depth=1, backend=backend)
  theta, phi, s, w = inputs(c)
  loss = lambda t, p, s: jnp.sum(w * c.bias(s, t, p))
  traced = {
    "bias": jax.make_jaxpr(c.bias)(s, theta, phi),
    "bias grad": jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(theta, phi, s),
    "coefficients": jax.make_jaxpr(c.coefficients)(theta, phi),
    "coefficients grad": jax.make_jaxpr(
      jax.grad(lambda t, p: jnp.sum(jnp.abs(c.coefficients(t, p)) ** 2), argnums=(0, 1))
    )(theta, phi),
  }
  for name, jaxpr in traced.items():
    dots = inexact_dots(jaxpr)
    assert dots, f"{name}: no float dot_general found (the readout is one)"
    for eqn in dots:
      assert eqn.params["precision"] == HIGHEST, f"{name}: {eqn}"


def test_model_matmuls_keep_the_default_precision():
  """Only the circuit asks for HIGHEST: the layer's own matmuls (projections,
  Q K^T, weights @ V) keep the precision the user set."""
  layer = MultiHeadAttention(8, 2, circuit=ScoreCircuit.build(), rngs=nnx.Rngs(0))
  x = jnp.ones((1, 3, 8))
  graphdef, state = nnx.split(layer)
  jaxpr = jax.make_jaxpr(lambda st: nnx.merge(graphdef, st)(x, deterministic=True))(state)
  precisions = [eqn.params["precision"] for eqn in inexact_dots(jaxpr)]
  assert precisions.count(HIGHEST) == 1  # The readout.
  assert precisions.count(None) == 4  # qkv, Q K^T, weights @ V, out.


@pytest.mark.parametrize("readout", ["expval", "probs"])
@pytest.mark.parametrize("backend", ["analytic", "statevector"])
def test_bias_matches_the_float64_reference(readout, backend):
  """Phi(s) against an independent numpy simulation of the gate list: the sum
  of <Z_i> (``"expval"``) or of the first n basis-state probabilities
  (``"probs"``), so a readout shared by every backend is checked too."""
  import reference

  circuit = ScoreCircuit.build(n_qubits=3, depth=2, readout=readout, backend=backend)
  rng = np.random.default_rng(5)
  theta, phi = (jnp.asarray(rng.uniform(-2, 2, (2, 3)), jnp.float32) for _ in range(2))
  s = jnp.asarray(rng.uniform(-3, 3, 7), jnp.float32)
  got = np.asarray(circuit.bias(s, theta, phi))
  signs = np.array([[1 - 2 * ((b >> (2 - q)) & 1) for b in range(8)] for q in range(3)])
  want = []
  for angles in np.asarray(circuit.angles(s, theta, phi), np.float64):
    p = reference.probabilities(3, circuit.gates(), angles)
    want.append(p[:3].sum() if readout == "probs" else (signs @ p).sum())
  np.testing.assert_allclose(got, want, atol=2e-5)
