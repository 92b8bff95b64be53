"""Full matmul precision wherever the library promises exactness.

On NVIDIA GPUs a float32 matmul at default precision runs in TF32 (about 1e-3
relative), on TPUs in bfloat16 passes; the CPU computes it exactly, so no value
test here can see it. These tests read the traced program instead: every
``dot_general`` on inexact operands inside the backends' expectations and the
quantum-attention score circuit must ask for ``Precision.HIGHEST``.
"""

import jax
import jax.numpy as jnp
import pytest
from jaxprs import low_precision_dots
from optional import pennylane_or_skip

from qsgd_optax import Circuit, Gates, qsgd
from qsgd_optax.backends import select


def test_the_checker_sees_a_default_precision_matmul():
  f = lambda a, b: jax.jit(lambda x: jax.lax.map(lambda r: r @ b, x))(a)
  x = jnp.ones((3, 4, 4))
  assert len(low_precision_dots(jax.make_jaxpr(f)(x, x[0]).jaxpr)) == 1
  g = lambda a, b: jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)
  assert not low_precision_dots(jax.make_jaxpr(g)(x[0], x[0]).jaxpr)


CIRCUITS = [(4, None, 1), (4, "chain", 1), (4, "chain", 2), (3, "ring", 2), (5, "ring", 3)]
BACKENDS = ["analytic", "pauli", "statevector", "pennylane"]


def _cases():
  """Every (backend, circuit, batch) that can run: the analytic backend only
  for circuits with a closed form, PennyLane's (vmapped, never chunked) small."""
  for config in CIRCUITS:
    circuit = Gates.build(*config)
    for backend in BACKENDS:
      if backend == "analytic" and not circuit.has_closed_form:
        continue
      for batch in [5] if backend == "pennylane" else [5, 70_000]:
        size = "small" if batch == 5 else "chunked"
        name = f"{config[0]}q-{config[1]}-{config[2]}l-{backend}-{size}"
        yield pytest.param(backend, config, batch, id=name)


@pytest.mark.parametrize(("backend", "config", "batch"), list(_cases()))
def test_backend_contractions_ask_for_highest(backend, config, batch):
  circuit = Gates.build(*config)
  if backend == "pennylane":
    pennylane_or_skip()
  expval = select(circuit, backend).expectations
  t = jax.ShapeDtypeStruct((batch, circuit.n_qubits), jnp.float32)
  jaxpr = jax.make_jaxpr(expval)(t).jaxpr
  assert not low_precision_dots(jaxpr), low_precision_dots(jaxpr)


@pytest.mark.parametrize("placement", ["gradient", "update", "direction"])
@pytest.mark.parametrize("backend", ["statevector", "pauli"])
def test_optimizer_step_asks_for_highest(backend, placement):
  circuit = Circuit(entanglement="chain", layers=2, backend=backend)
  tx = qsgd(1e-3, quantum_weight=0.5, circuit=circuit, placement=placement)
  params = {"w": jnp.ones((3, 9)), "b": jnp.ones(())}
  jaxpr = jax.make_jaxpr(tx.update)(params, tx.init(params), params).jaxpr
  assert not low_precision_dots(jaxpr)
