"""Multi-host fine-tuning with ``qsgd``: one program per host, one global mesh.

Every host (JAX process) runs this same script. ``jax.distributed`` connects
the processes; ``jax.devices()`` then lists the devices of all hosts, and a
``data x fsdp`` mesh spans them: the batch is split over ``data`` (one row
of the mesh per host, so each host feeds only its own examples), the
parameters and the optimizer state over the devices of a host (``fsdp``).
``qsgd`` needs nothing special: its state is sharded like the parameters and,
when each device's slice of a last axis is a multiple of ``n_qubits``, its
update adds no collective to AdamW's.

Run:
  python examples/multihost_finetune.py               # local demo: 2 processes
                                                      # on 127.0.0.1, 4 CPU devices each
  python examples/multihost_finetune.py --local-demo 3 --cpu-devices 2

  # On each of N hosts, host 0 being reachable at 10.0.0.1 (any free port):
  python examples/multihost_finetune.py --coordinator-address 10.0.0.1:1234 \\
      --num-processes N --process-id I
  # or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID;
  # on Cloud TPU, Slurm or Open MPI, --auto lets jax find all three.
"""

import argparse
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback


def parse_args(argv=None):
  env = os.environ.get
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument(
    "--coordinator-address",
    default=env("JAX_COORDINATOR_ADDRESS"),
    help="host:port of process 0's coordinator (env JAX_COORDINATOR_ADDRESS)",
  )
  parser.add_argument(
    "--num-processes",
    type=int,
    default=int(env("JAX_NUM_PROCESSES", "0")) or None,
    help="number of processes (env JAX_NUM_PROCESSES)",
  )
  parser.add_argument(
    "--process-id",
    type=int,
    default=None if env("JAX_PROCESS_ID") is None else int(env("JAX_PROCESS_ID")),
    help="this process's id, 0 .. N-1 (env JAX_PROCESS_ID)",
  )
  parser.add_argument(
    "--auto", action="store_true", help="let jax.distributed detect TPU / Slurm / Open MPI"
  )
  parser.add_argument(
    "--local-demo",
    type=int,
    metavar="N",
    default=None,
    help="launch N processes on 127.0.0.1 (the default, N=2, when no coordinator is given)",
  )
  parser.add_argument(
    "--cpu-devices",
    type=int,
    default=None,
    help="simulate this many CPU devices per process (default: 4 in the demo, else "
    "the machine's accelerators)",
  )
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--checkpoint-dir", help="save params and optimizer state (Orbax) here")
  parser.add_argument("--loopback", action="store_true", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def local_demo(args):
  """Runs ``args.local_demo`` copies of this script on 127.0.0.1, as hosts would."""
  n = args.local_demo or 2
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  print(f"local demo: {n} processes, coordinator 127.0.0.1:{port}", flush=True)
  common = ["--coordinator-address", f"127.0.0.1:{port}", "--num-processes", str(n)]
  common += ["--cpu-devices", str(args.cpu_devices or 4), "--steps", str(args.steps), "--loopback"]
  if args.checkpoint_dir:
    common += ["--checkpoint-dir", args.checkpoint_dir]
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  procs = []
  with tempfile.TemporaryDirectory() as logs:
    try:
      for i in range(n):
        err = open(os.path.join(logs, f"{i}.err"), "w")  # noqa: SIM115 (closed below)
        procs.append(
          subprocess.Popen(
            [sys.executable, __file__, *common, "--process-id", str(i)],
            # Process 0 prints the progress; Gloo's connection notes go with it.
            stdout=None if i == 0 else subprocess.DEVNULL,
            stderr=err,
            env=env,
          )
        )
        err.close()
      deadline = time.monotonic() + 600
      while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() for p in procs):  # One failed: the others would wait for it.
          break
        time.sleep(0.2)
    finally:
      for p in procs:
        if p.poll() is None:
          p.kill()  # SIGKILL: jax's preemption notifier catches SIGTERM.
        p.wait()
    codes = [p.returncode for p in procs]
    if any(codes):
      for i in range(n):
        with open(os.path.join(logs, f"{i}.err")) as f:
          sys.stderr.write(f"--- process {i} (exit {codes[i]}):\n{f.read()[-3000:]}\n")
      sys.exit(1)


def initialize(args):
  """Connects this process to the others; runs before any other JAX call."""
  import jax

  if args.cpu_devices:
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    # Cross-process collectives on CPU (the default since jax 0.4.36).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if args.auto:
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(
      coordinator_address=args.coordinator_address,
      num_processes=args.num_processes,
      process_id=args.process_id,
      # The coordinator otherwise listens on every interface ([::]:port).
      coordinator_bind_address=args.coordinator_address if args.loopback else None,
    )
  if args.loopback:  # One machine: collectives over 127.0.0.1 only.
    from _loopback import bind_gloo_to_loopback

    bind_gloo_to_loopback()


def train(args):
  initialize(args)
  import jax
  import numpy as np
  import optax
  from flax import nnx
  from jax.sharding import Mesh, NamedSharding
  from jax.sharding import PartitionSpec as P

  import qsgd_optax
  from qsgd_optax.nn import CausalLM

  n_proc, me = jax.process_count(), jax.process_index()
  # One mesh row per host: "data" crosses hosts, "fsdp" stays inside one.
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  mesh = Mesh(np.array(devices).reshape(n_proc, -1), ("data", "fsdp"))
  fsdp = mesh.shape["fsdp"]
  vocab, length, rows_per_host = 64, 32, 8

  def create():
    model = CausalLM(
      vocab, length, d_model=64, num_heads=4, d_ff=128, num_layers=1, rngs=nnx.Rngs(0)
    )
    return nnx.split(model, nnx.Param)

  graphdef, abstract = nnx.eval_shape(create)

  def spec(x):  # Matrices split by rows over fsdp, vectors replicated.
    return P("fsdp", None) if x.ndim == 2 and x.shape[0] % fsdp == 0 else P()

  param_sh = jax.tree.map(lambda x: NamedSharding(mesh, spec(x)), abstract)
  # Initialised in place: each device computes only its own shard.
  params = jax.jit(lambda: create()[1], out_shardings=param_sh)()

  tx = qsgd_optax.qsgd(optax.cosine_decay_schedule(3e-3, args.steps, 0.1), quantum_weight=0.5)
  replicated = NamedSharding(mesh, P())
  state_sh = optax.tree_utils.tree_map_params(
    tx,
    lambda _, s: s,
    jax.eval_shape(tx.init, params),
    param_sh,
    transform_non_params=lambda _: replicated,  # Step counts, PRNG keys.
  )
  opt_state = jax.jit(tx.init, out_shardings=state_sh)(params)

  batch_sh = NamedSharding(mesh, P("data", None))

  # Shardings pinned: XLA may not pick other layouts for the outputs (and
  # the next step would not recompile for them).
  @functools.partial(
    jax.jit,
    in_shardings=(param_sh, state_sh, batch_sh),
    out_shardings=(param_sh, state_sh, replicated),
    donate_argnums=(0, 1),
  )
  def step(params, opt_state, tokens):
    def loss_fn(params):
      logits = nnx.merge(graphdef, params)(tokens[:, :-1], deterministic=True)
      return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  global_shape = (rows_per_host * n_proc, length + 1)

  def local_batch(i):
    """This host's examples only: arithmetic sequences mod ``vocab`` with a
    random start and stride; the model must read the stride from context."""
    rng = np.random.default_rng([i, me])
    start = rng.integers(0, vocab, (rows_per_host, 1))
    stride = rng.integers(1, 4, (rows_per_host, 1))
    tokens = (start + stride * np.arange(length + 1)) % vocab
    return jax.make_array_from_process_local_data(batch_sh, tokens.astype(np.int32), global_shape)

  if me == 0:
    print(
      f"{n_proc} processes x {jax.local_device_count()} devices, mesh {dict(mesh.shape)}, "
      f"{sum(x.size for x in jax.tree.leaves(params)):,} parameters",
      flush=True,
    )
  for i in range(args.steps):
    params, opt_state, loss = step(params, opt_state, local_batch(i))
    if me == 0 and (i % 10 == 0 or i == args.steps - 1):
      print(f"step {i:3d}  loss {float(loss):.4f}", flush=True)

  kernel = params["body"]["blocks"][0]["ff1"]["kernel"]
  mu = optax.tree.get(opt_state, "mu")["body"]["blocks"][0]["ff1"]["kernel"]
  if me == 0:
    print(
      f"ff1 kernel {kernel.shape} sharded {kernel.sharding.spec}, its Adam moments "
      f"{mu.sharding.spec}; this process holds {len(kernel.addressable_shards)} of "
      f"{len(kernel.sharding.device_set)} shards",
      flush=True,
    )
  if args.checkpoint_dir:
    import orbax.checkpoint as ocp

    ckpt = ocp.StandardCheckpointer()  # Every process writes its own shards.
    path = os.path.join(os.path.abspath(args.checkpoint_dir), f"step_{args.steps}")
    ckpt.save(path, {"params": params, "opt_state": opt_state})
    ckpt.wait_until_finished()
    if me == 0:
      print(f"saved {path}", flush=True)


def main():
  args = parse_args()
  if args.coordinator_address or args.auto:
    try:
      train(args)
    except BaseException:
      # Fail fast: a normal exit would wait at jax.distributed's shutdown
      # barrier for the other processes, which may be waiting for this one.
      traceback.print_exc()
      sys.stderr.flush()
      os._exit(1)
  else:
    local_demo(args)


if __name__ == "__main__":
  main()
