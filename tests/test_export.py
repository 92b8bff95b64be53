"""The qsgd step lowers for CPU, GPU and TPU, with full-precision contractions.

``jax.export`` lowers the jitted step (update + apply) for every platform from
this CPU, so a lowering rule missing on TPU or CUDA fails here, and the
exported StableHLO is read: every float ``dot_general`` must ask for
``HIGHEST`` precision (default precision is TF32 on NVIDIA GPUs and bfloat16
passes on TPUs).
"""

import re

import jax
import jax.numpy as jnp
import optax
import pytest
from jax import export

import qsgd_optax

PLATFORMS = ("cpu", "cuda", "tpu")
# Every backend but PennyLane, each on a circuit it runs (analytic: closed form).
CIRCUITS = {
  "analytic": qsgd_optax.Circuit(entanglement="chain", backend="analytic"),
  "pauli": qsgd_optax.Circuit(entanglement="chain", layers=2, backend="pauli"),
  "statevector": qsgd_optax.Circuit(entanglement="ring", layers=2, backend="statevector"),
}
DOT = re.compile(r"stablehlo\.dot_general.*")


def exported_text(tx, dtype):
  params = {"w": jnp.ones((4, 10), dtype), "b": jnp.ones((3,), dtype)}

  @jax.jit
  def step(p, s, g):
    updates, s = tx.update(g, s, p)
    return optax.apply_updates(p, updates), s

  shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  state = jax.eval_shape(tx.init, params)
  exp = export.export(step, platforms=PLATFORMS)(shapes, state, shapes)
  assert exp.platforms == PLATFORMS
  return exp.mlir_module()


def float_dots(text):
  """The float ``dot_general`` operations of a StableHLO module's text."""
  float_tensor = re.compile(r"tensor<[^>]*(f16|bf16|f32|f64)>")
  return [line for line in DOT.findall(text) if float_tensor.search(line)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("backend", list(CIRCUITS))
@pytest.mark.parametrize("placement", qsgd_optax.PLACEMENTS)
def test_step_exports_for_every_platform_at_full_precision(placement, backend, dtype):
  tx = qsgd_optax.qsgd(1e-3, placement=placement, circuit=CIRCUITS[backend])
  text = exported_text(tx, dtype)
  dots = float_dots(text)
  if backend == "statevector":
    assert dots  # The dense simulator contracts: the check below has work to do.
  low = [d for d in dots if "precision = [HIGHEST, HIGHEST]" not in d]
  assert not low, low[:3]


def test_the_check_sees_a_default_precision_contraction():
  tx = optax.adamw(1e-3)
  params = jnp.ones((3, 3))

  @jax.jit
  def f(p):
    return p @ p, tx.init(p)

  text = export.export(f, platforms=PLATFORMS)(params).mlir_module()
  dots = float_dots(text)  # One lowering per platform.
  assert len(dots) == len(PLATFORMS) and not any("HIGHEST" in d for d in dots)
