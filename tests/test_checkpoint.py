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
    optax.linear_schedule(1e-2, 1e-3, STEPS), quantum_weight=0.5, entanglement="ring", shots=32, key=7
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


def superpose_state(state):
  """The one SuperposeState (PRNG key, step count) wherever qsgd's chain keeps it."""
  is_state = lambda x: isinstance(x, qsgd_optax.SuperposeState)
  (found,) = [x for x in jax.tree.leaves(state, is_leaf=is_state) if is_state(x)]
  return found


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
  sp = superpose_state(state)
  np.savez(out_file, **params, count=np.asarray(sp.count), key=np.asarray(sp.key))


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
  assert int(resumed["count"]) == int(superpose_state(full_state).count) == STEPS
  np.testing.assert_array_equal(resumed["key"], superpose_state(full_state).key)
  # The key did move: shots were drawn fresh each step.
  assert not np.array_equal(resumed["key"], superpose_state(tx.init(params)).key)


if __name__ == "__main__":
  resume(sys.argv[1], sys.argv[2])
