"""Property-based tests (hypothesis): hostile pytrees never break superpose.

Complex leaves pass through untouched (the circuit's angles must be real);
NaN in a gradient stays in its own entry; NaN or inf in a parameter gives that
entry a zero modulation; finite gradients give finite updates.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import qsgd_optax
from conftest import enable_x64
from qsgd_optax import Circuit

FLOATS = [jnp.float16, jnp.bfloat16, jnp.float32]
OTHERS = [jnp.int32, jnp.bool_, jnp.complex64]
SPECIAL = [0.0, -0.0, 1e-45, -1e-40, 1e30, -1e30, 3e38, 65000.0, 0.5, -1.0, np.nan, np.inf, -np.inf]

values = st.one_of(st.sampled_from(SPECIAL), st.floats(-1e6, 1e6, allow_nan=False, width=32))
shapes = st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)


@st.composite
def leaves(draw):
  shape = draw(shapes)
  dtype = draw(st.sampled_from(FLOATS + OTHERS))
  size = int(np.prod(shape))
  p = np.array(draw(st.lists(values, min_size=size, max_size=size)), np.float64)
  g = np.array(draw(st.lists(values, min_size=size, max_size=size)), np.float64)
  with np.errstate(invalid="ignore", over="ignore"):
    return (np.asarray(p.reshape(shape)).astype(dtype), np.asarray(g.reshape(shape)).astype(dtype))


trees = st.dictionaries(st.sampled_from("abcdef"), leaves(), max_size=4)
circuits = st.sampled_from(
  [
    Circuit(),
    Circuit(entanglement="ring"),
    Circuit(entanglement="chain", layers=2),
    Circuit(n_qubits=3, coverage="leading"),
    Circuit(shots=16),
    Circuit(backend="statevector", n_qubits=2),
  ]
)


@settings(max_examples=60, deadline=None)
@given(trees, circuits, st.floats(-2, 2))
def test_hostile_trees(tree, circuit, weight):
  params = {k: jnp.asarray(p) for k, (p, _) in tree.items()}
  grads = {k: jnp.asarray(g) for k, (_, g) in tree.items()}
  tx = qsgd_optax.superpose(weight, circuit)
  out, _ = tx.update(grads, tx.init(params), params)
  out2, _ = tx.update(grads, tx.init(params), params)
  assert jax.tree.structure(out) == jax.tree.structure(grads)
  for k, g in grads.items():
    o = np.asarray(out[k])
    assert out[k].dtype == g.dtype and out[k].shape == g.shape
    assert o.tobytes() == np.asarray(out2[k]).tobytes()  # Bit-identical.
    if not jnp.issubdtype(g.dtype, jnp.floating):
      assert o.tobytes() == np.asarray(g).tobytes()  # Untouched.
      continue
    gf = np.asarray(g, np.float32)
    finite = np.isfinite(gf)
    assert np.all(np.isfinite(o.astype(np.float32))[finite]), (k, gf, o)
    # Non-finite gradient entries stay non-finite (the perturbation can not
    # hide a NaN from apply_if_finite) and do not spread.
    assert np.all(~np.isfinite(o.astype(np.float32))[~finite])


@settings(max_examples=25, deadline=None)
@given(
  st.lists(values, min_size=1, max_size=9),
  st.sampled_from([Circuit(3), Circuit(3, "ring"), Circuit(3, backend="statevector")]),
)
def test_float64(theta, circuit):
  with enable_x64(True):
    p = jnp.asarray(theta, jnp.float64)
    g = jnp.ones_like(p)
    tx = qsgd_optax.superpose(1.0, circuit)
    out, _ = tx.update(g, tx.init(p), p)
    assert out.dtype == jnp.float64 and np.all(np.isfinite(out))
    assert np.all(np.abs(np.asarray(out) - 1) <= 1 + 1e-12)
