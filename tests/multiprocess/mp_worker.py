"""One process of the multi-process tests (launched by tests/test_multiprocess.py).

Trains a small causal transformer with ``qsgd`` (``shots=32``, so the PRNG
key and the step count in the optimizer state matter) on a ``data x fsdp``
mesh, either as one process of a ``jax.distributed`` job on 127.0.0.1 or as
a single process, and writes (process 0) to ``--out``:

* ``uninterrupted.npz``: the global params and optimizer state after
  ``--steps`` steps from the start, gathered to the host, and the losses;
* with ``--save DIR``: ``at_split.npz``, the state after ``--split`` steps,
  which also goes to an Orbax checkpoint in DIR (every process writes its
  own shards);
* with ``--restore DIR``: ``restored_at_split.npz``, that checkpoint read
  back onto this process's mesh and shardings, and ``restored.npz``, the run
  continued from it to ``--steps``;
* ``meta.json``: process and device counts, whether every param and state
  leaf kept its sharding at every step, and (with ``--hlo``) the collective
  ops in the compiled update and train step of ``qsgd`` and ``optax.adamw``.

Importing this module does nothing (pytest imports it for doctests).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import re
import sys
import time
import traceback

_T0 = time.perf_counter()

COLLECTIVES = (
  "all-reduce",
  "all-gather",
  "reduce-scatter",
  "all-to-all",
  "collective-permute",
  "collective-broadcast",
)
# "%name = <type> <op>(" or, for async collectives, "<op>-start(".
_COLLECTIVE_RE = re.compile(r"=\s*(\S+|\([^)]*\))\s+(" + "|".join(COLLECTIVES) + r")(?:-start)?\(")

VOCAB, LENGTH, BATCH, WIDTH, HIDDEN = 128, 16, 8, 32, 128
N_QUBITS = 4


def count_collectives(hlo_text: str) -> dict[str, int]:
  """Collective ops in compiled HLO text, as ``{"op result-type": count}``
  (an async op counted once, by its ``-start`` half)."""
  return dict(collections.Counter(f"{op} {ty}" for ty, op in _COLLECTIVE_RE.findall(hlo_text)))


def log(msg):
  """Progress with elapsed seconds, on stderr (the test shows it on failure)."""
  print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def setup(args):
  """Configures the CPU backend and, for several processes, ``jax.distributed``.

  Runs before anything touches a JAX backend."""
  import jax

  jax.config.update("jax_platforms", "cpu")
  jax.config.update("jax_num_cpu_devices", args.devices)
  if args.num_processes > 1:
    # Gloo is the default since jax 0.4.36; set it for older versions.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    address = f"127.0.0.1:{args.port}"
    jax.distributed.initialize(
      coordinator_address=address,
      num_processes=args.num_processes,
      process_id=args.process_id,
      coordinator_bind_address=address,  # The default, [::]:port, is every interface.
      initialization_timeout=60,
    )
    from _loopback import bind_gloo_to_loopback

    bind_gloo_to_loopback()


def init_params(np):
  """A one-block causal transformer in four leaves.

  ``attn`` packs ``[W_q | W_k | W_v | W_o^T]``, ``mlp_in`` is stored
  transposed; the output head is the embedding (tied); norms are RMS norms
  without parameters. On the 2 x 4 mesh every leaf's shard is 32 x 32:
  compiling ``jax.random.binomial`` (shots) costs seconds on CPU for each
  distinct shard shape, and XLA shares the code between equal ones."""
  rng = np.random.default_rng(0)
  shapes = {
    "embed": (VOCAB, WIDTH),
    "attn": (WIDTH, 4 * WIDTH),
    "mlp_in": (HIDDEN, WIDTH),
    "mlp_out": (HIDDEN, WIDTH),
  }
  return {
    k: (rng.standard_normal(s) / np.sqrt(WIDTH)).astype(np.float32) for k, s in shapes.items()
  }


def forward(jnp, params, tokens):
  def norm(x):
    return x / jnp.sqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-6)

  length = tokens.shape[1]
  pos = jnp.arange(length)[:, None] / 10_000 ** (jnp.arange(WIDTH)[None] / WIDTH)
  x = params["embed"][tokens] + jnp.where(jnp.arange(WIDTH) % 2, jnp.cos(pos), jnp.sin(pos))
  q, k, v, o = jnp.split(params["attn"], 4, axis=1)
  h = norm(x)
  scores = (h @ q) @ (h @ k).swapaxes(1, 2) / jnp.sqrt(WIDTH)
  causal = jnp.tril(jnp.ones((length, length), bool))
  weights = jnp.exp(jnp.where(causal, scores, -1e9) - scores.max(-1, keepdims=True))
  x = x + (weights / weights.sum(-1, keepdims=True)) @ (h @ v) @ o.T
  x = x + jnp.maximum(norm(x) @ params["mlp_in"].T, 0) @ params["mlp_out"]
  return norm(x) @ params["embed"].T


def run(args):
  setup(args)
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  import orbax.checkpoint as ocp
  from jax.experimental import multihost_utils
  from jax.sharding import Mesh, NamedSharding
  from jax.sharding import PartitionSpec as P

  import qsgd_optax

  log(f"process {jax.process_index()} of {jax.process_count()}, {jax.device_count()} devices")
  mesh_shape = tuple(int(n) for n in args.mesh.split(","))
  mesh = Mesh(np.array(jax.devices()).reshape(mesh_shape), ("data", "fsdp"))
  replicated = NamedSharding(mesh, P())
  host_params = init_params(np)
  # FSDP: matrices split by rows, except ``attn``, split by columns: the
  # circuit's groups of N_QUBITS run along the last axis, so that is the leaf
  # where groups could straddle devices (they do not: 32 columns per device).
  specs = {
    "embed": P("fsdp", None),
    "attn": P(None, "fsdp"),
    "mlp_in": P("fsdp", None),
    "mlp_out": P("fsdp", None),
  }
  param_sh = {n: NamedSharding(mesh, s) for n, s in specs.items()}

  def make_tx(name="qsgd", **fields):
    """``qsgd`` on a chain of N_QUBITS with 32 shots; ``fields`` change the circuit."""
    lr = optax.linear_schedule(1e-2, 1e-3, args.steps)
    if name == "adamw":
      return optax.adamw(lr, weight_decay=1e-4)
    fields = {"n_qubits": N_QUBITS, "entanglement": "chain", "shots": 32, **fields}
    circuit = qsgd_optax.Circuit(**fields)
    return qsgd_optax.qsgd(lr, quantum_weight=0.5, circuit=circuit, key=7)

  def state_shardings(tx):
    """Adam's moments are sharded like their params; scalars (counts, the
    PRNG key) are replicated."""

    def pick(path, leaf):
      name = getattr(path[-1], "key", None)
      if name in param_sh and leaf.shape == host_params[name].shape:
        return param_sh[name]
      return replicated

    return jax.tree_util.tree_map_with_path(pick, jax.eval_shape(tx.init, host_params))

  def loss_fn(params, tokens):
    # FSDP: gather the weights for the forward pass. Each device then sums
    # its own rows of the batch and the gradient's sum over the batch is one
    # all-reduce over "data" (2 members), so summation order, and the bits,
    # do not depend on how the collectives are implemented.
    params = jax.lax.with_sharding_constraint(params, replicated)
    logits = forward(jnp, params, tokens[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

  def make_step(tx):
    def step(params, opt_state, tokens):
      loss, grads = jax.value_and_grad(loss_fn)(params, tokens)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step)

  batch_sh = NamedSharding(mesh, P("data", None))

  def batch(i):
    """Step i's global batch; each process passes only the rows its devices hold."""
    tokens = np.random.default_rng(1000 + i).integers(0, VOCAB, (BATCH, LENGTH + 1), np.int32)
    index = batch_sh.addressable_devices_indices_map(tokens.shape).values()
    rows = sorted({idx[0].indices(BATCH)[:2] for idx in index})
    assert all(a[1] == b[0] for a, b in itertools.pairwise(rows)), rows
    local = tokens[rows[0][0] : rows[-1][1]]
    return jax.make_array_from_process_local_data(batch_sh, local, tokens.shape)

  tx = make_tx()
  state_sh = state_shardings(tx)
  step = make_step(tx)
  ckpt = ocp.StandardCheckpointer()

  def to_host(tree):
    if jax.process_count() > 1:
      return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)

  def kept_shardings(params, opt_state):
    ok = all(params[n].sharding.is_equivalent_to(param_sh[n], params[n].ndim) for n in params)
    pairs = zip(jax.tree.leaves(opt_state), jax.tree.leaves(state_sh))
    return ok and all(x.sharding.is_equivalent_to(s, x.ndim) for x, s in pairs)

  results = {}  # name -> (host tree, losses)
  meta = dict(
    process_count=jax.process_count(),
    device_count=jax.device_count(),
    local_device_count=jax.local_device_count(),
    mesh=dict(mesh.shape),
    shardings_kept=True,
  )

  def train(params, opt_state, start, save=None):
    losses = []
    for i in range(start, args.steps):
      if save and i == args.split:
        ckpt.save(os.path.abspath(save), {"params": params, "state": opt_state})
        ckpt.wait_until_finished()
        results["at_split"] = (to_host({"params": params, "state": opt_state}), [])
        log(f"saved the state after {i} steps")
      params, opt_state, loss = step(params, opt_state, batch(i))
      losses.append(float(loss))
      meta["shardings_kept"] &= kept_shardings(params, opt_state)
      log(f"step {i} loss {losses[-1]:.6f}")
    return params, opt_state, losses

  # Every process holds the same host values; each device takes its shard.
  params = {
    n: jax.make_array_from_callback(x.shape, param_sh[n], lambda idx, x=x: x[idx])
    for n, x in host_params.items()
  }
  opt_state = jax.jit(tx.init, out_shardings=state_sh)(params)
  meta["fully_addressable"] = all(x.is_fully_addressable for x in jax.tree.leaves(params))
  meta["shardings_kept"] = kept_shardings(params, opt_state)
  final_params, final_state, losses = train(params, opt_state, 0, args.save)
  results["uninterrupted"] = (to_host({"params": final_params, "state": final_state}), losses)

  if args.restore:
    # Target shapes, dtypes and shardings for this process's mesh: Orbax
    # reads each device's slice of the arrays another topology wrote.
    abstract = jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      {"params": params, "state": opt_state},
      {"params": param_sh, "state": state_sh},
    )
    restored = ckpt.restore(os.path.abspath(args.restore), abstract)
    meta["shardings_kept"] &= kept_shardings(restored["params"], restored["state"])
    results["restored_at_split"] = (to_host(restored), [])
    log("restored")
    p, st, losses = train(restored["params"], restored["state"], args.split)
    results["restored"] = (to_host({"params": p, "state": st}), losses)
  ckpt.close()

  if args.hlo and jax.process_index() == 0:
    # Compiling is local to a process (nothing runs): only process 0, which
    # writes meta.json, needs the HLO.
    meta["collectives"] = collectives(jax, make_tx, make_step, state_shardings, params, batch(0))
    # The run's own step (shots=32) is compiled already: a cache hit.
    hlo = step.lower(params, opt_state, batch(0)).compile().as_text()
    meta["collectives"]["qsgd_shots"] = dict(step=count_collectives(hlo))
    log("collectives counted")

  if jax.process_index() == 0:
    os.makedirs(args.out, exist_ok=True)
    for name, (host, losses) in results.items():
      leaves = jax.tree_util.tree_leaves_with_path(host)
      arrays = {jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves}
      np.savez(os.path.join(args.out, name + ".npz"), losses=np.array(losses), **arrays)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
      json.dump(meta, f, indent=1)
  multihost_utils.sync_global_devices("written")
  log("done")


def collectives(jax, make_tx, make_step, state_shardings, params, tokens):
  """Collective ops XLA compiled into each optimizer's update and train step.

  ``qsgd`` is the exact circuit (``shots=None``); ``misaligned`` (groups of
  3 qubits on a last axis split 32 entries per device) is the control:
  its groups straddle devices, so data must move. Only AdamW's train step is
  compiled here: the caller compares it with the run's own (``shots=32``).
  Everything is lowered on abstract optimizer states (shapes and
  shardings) and compiled, never run: process 0 counts alone."""
  import optax

  out = {}
  grads = params  # Any tree with the params' shapes and shardings.
  for name, tx in {
    "adamw": make_tx("adamw"),
    "qsgd": make_tx(shots=None),
    "misaligned": make_tx(shots=None, n_qubits=3),
  }.items():
    # The state's shapes and shardings, not its values: nothing is run.
    st = jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      jax.eval_shape(tx.init, params),
      state_shardings(tx),
    )

    def update(params, st, grads, tx=tx):
      updates, st = tx.update(grads, st, params)
      return optax.apply_updates(params, updates), st

    upd = jax.jit(update).lower(params, st, grads).compile().as_text()
    out[name] = dict(update=count_collectives(upd))
    if name == "adamw":
      full = make_step(tx).lower(params, st, tokens).compile().as_text()
      out[name]["step"] = count_collectives(full)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--num-processes", type=int, default=1)
  parser.add_argument("--process-id", type=int, default=0)
  parser.add_argument("--port", type=int, default=0, help="coordinator port on 127.0.0.1")
  parser.add_argument("--devices", type=int, default=8, help="CPU devices in this process")
  parser.add_argument("--mesh", default="2,4", help="data,fsdp")
  parser.add_argument("--steps", type=int, default=6)
  parser.add_argument("--split", type=int, default=3)
  parser.add_argument("--save", help="checkpoint directory to write at --split")
  parser.add_argument("--restore", help="checkpoint directory to start from")
  parser.add_argument("--hlo", action="store_true", help="count collectives in compiled HLO")
  parser.add_argument("--out", required=True)
  try:
    run(parser.parse_args(argv))
  except BaseException:
    # Fail fast: a normal exit would wait at jax.distributed's shutdown
    # barrier for peers that may be waiting for this process.
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)


if __name__ == "__main__":
  main()
