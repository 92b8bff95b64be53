"""Checkpoint and resume with Orbax: a restart does not change the trajectory.

Trains N steps, saves params and optimizer state (PRNG key and step count
included, with ``shots`` set), restores in a fresh process, continues, and
compares with an uninterrupted run bit for bit.
"""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import qsgd_optax

STEPS, SPLIT = 12, 5


def make_tx():
  return qsgd_optax.qsgd(
    optax.linear_schedule(1e-2, 1e-3, STEPS),
    quantum_weight=0.5,
    circuit=qsgd_optax.Circuit(entanglement="ring", shots=32),
    key=7,
  )


def loss(params, i):
  x = jnp.sin(jnp.arange(6.0) + i)
  return jnp.sum((params["w"] @ x - 1.0) ** 2) + jnp.sum(params["b"] ** 2)


def init_params():
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  return {"w": jax.random.normal(k1, (5, 6)), "b": jax.random.normal(k2, (5,))}


@functools.cache
def stepper():
  """One compiled step per process, shared by every run in it."""
  tx = make_tx()

  @jax.jit
  def step(params, state, i):
    updates, state = tx.update(jax.grad(loss)(params, i), state, params)
    return optax.apply_updates(params, updates), state

  return step


def train(params, state, start, stop):
  step = stepper()
  for i in range(start, stop):
    params, state = step(params, state, i)
  return params, state


def counter_and_key(state):
  """Adam's step count and the PRNG key (the learning-rate schedule keeps a
  count of its own, as in optax.adamw)."""
  qsgd_state = state[0]
  assert isinstance(qsgd_state, qsgd_optax.ScaleByQSGDState)
  return {"count": qsgd_state.adam.count, "key": qsgd_state.key}


def _checkpointer():
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

  return ocp.StandardCheckpointer()


def resume(ckpt_dir, out_file):
  """Runs in a fresh process: restore, continue, save the final params."""
  params = init_params()
  target = {"params": params, "state": make_tx().init(params)}
  ckpt = _checkpointer()
  restored = ckpt.restore(ckpt_dir, jax.tree.map(jnp.zeros_like, target))
  params, state = train(restored["params"], restored["state"], SPLIT, STEPS)
  np.savez(out_file, **params, **jax.tree.map(np.asarray, counter_and_key(state)))


def test_resume_is_bit_identical(tmp_path):
  params = init_params()
  tx = make_tx()
  full, full_state = train(params, tx.init(params), 0, STEPS)
  part, part_state = train(params, tx.init(params), 0, SPLIT)
  ckpt = _checkpointer()
  ckpt.save(tmp_path / "ckpt", {"params": part, "state": part_state})
  ckpt.wait_until_finished()
  out = tmp_path / "resumed.npz"
  subprocess.run(
    [sys.executable, __file__, str(tmp_path / "ckpt"), str(out)],
    check=True,
    cwd=os.path.dirname(__file__),
  )
  resumed = np.load(out)
  for k in full:
    np.testing.assert_array_equal(resumed[k], full[k])
  full_ck = counter_and_key(full_state)
  assert int(resumed["count"]) == int(full_ck["count"]) == STEPS
  np.testing.assert_array_equal(resumed["key"], full_ck["key"])
  # The key did move: shots were drawn fresh each step.
  assert not np.array_equal(resumed["key"], counter_and_key(tx.init(params))["key"])


if __name__ == "__main__":
  resume(sys.argv[1], sys.argv[2])
