"""qsgd at GPT-2-small scale: train-step time, optimizer state and temporaries.

A GPT-2-small-shaped causal LM (``qsgd_optax.nn.CausalLM``: 12 layers, width
768, 12 heads, MLP 3072, vocabulary 50257, 1024 positions, tied embeddings:
124,439,808 parameters, random init) trains on a fixed batch of 2 x 64
tokens with ``optax.adamw`` and with ``qsgd`` (same learning rate, weight
decay and Adam parameters). The timing method is benchmarks/overhead.py's:
jitted steps with params and state donated, candidates interleaved in a
shuffled order each round, an untimed step before each timed one, medians,
and the ratio to AdamW in the same run (plus the median of the per-round
ratios, which a slow drift of the machine's load affects less).

The optimizer update alone (``update`` + ``apply_updates``, params and
state donated, on its own copy of params and state and a fixed gradient) is
timed the same way in each round. Both take the parameters as plain nested
dicts (``nnx.to_pure_dict``): an ``nnx.State`` tree costs the host far more
to flatten and rebuild at every jitted call (GPT-2-small's 148 leaves of
params, moments and gradients: 31.7 ms against 3.5 ms as plain dicts on the
2-core CPU, 2026-11-27), host time that can exceed the device's; the likely
cause of the update alone reading 12.3 ms for AdamW on an H200 beside a 9 ms
train step before that date (not re-measured on a GPU yet). The update alone
also runs ``--update-steps`` updates (default 10) in one jitted
``lax.fori_loop`` and reports the time per update, so the per-call host cost
of its four trees is paid once per 10 updates.

Also reported, from XLA's compiled memory analysis, the temporaries of the
train step and of the update alone, and the optimizer state's bytes: in
total and in the leaves shaped like the parameters (Adam's two moments).

Run:
  python benchmarks/scale.py               # 20 rounds, about 5-8 min on 2 cores
  python benchmarks/scale.py --repeats 5   # quick
Writes benchmarks/results/scale-<platform>.{json,md}.
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _results import save
from _timing import interleaved, memory, run_meta, tree_bytes
from flax import nnx

import qsgd_optax
from qsgd_optax.nn import CausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
GPT2_SMALL = dict(
  vocab_size=50257, max_len=1024, d_model=768, num_heads=12, d_ff=3072, num_layers=12
)
LR, WEIGHT_DECAY = 3e-4, 1e-4


def candidates(names):
  all_ = {
    "adamw": lambda: optax.adamw(LR, weight_decay=WEIGHT_DECAY),
    "qsgd": lambda: qsgd_optax.qsgd(LR, quantum_weight=0.5, weight_decay=WEIGHT_DECAY),
    "qsgd(direction)": lambda: qsgd_optax.qsgd(
      LR, quantum_weight=0.5, weight_decay=WEIGHT_DECAY, placement="direction"
    ),
    "qsgd(ring)": lambda: qsgd_optax.qsgd(
      LR,
      quantum_weight=0.5,
      weight_decay=WEIGHT_DECAY,
      circuit=qsgd_optax.Circuit(entanglement="ring"),
    ),
  }
  return {n: all_[n]() for n in names}


def setup(name, tx, graphdef, params0, grads, tokens, update_steps):
  def loss_fn(params):
    logits = nnx.merge(graphdef, params)(tokens[:, :-1], deterministic=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  def update(params, opt_state, grads):
    def one(_, carry):
      updates, opt_state = tx.update(grads, carry[1], carry[0])
      return optax.apply_updates(carry[0], updates), opt_state

    return jax.lax.fori_loop(0, update_steps, one, (params, opt_state))

  # Copies: the steps donate their inputs, and qsgd's init hands out the
  # same PRNG-key array every time it is called.
  params = jax.tree.map(jnp.copy, params0)
  opt_state = jax.tree.map(jnp.copy, tx.init(params))
  # A second copy for timing the update alone, on gradients of a fixed size.
  update_carry = (jax.tree.map(jnp.copy, params0), jax.tree.map(jnp.copy, tx.init(params0)))
  shapes = {x.shape for x in jax.tree.leaves(params)}
  moments = [x for x in jax.tree.leaves(opt_state) if x.ndim and x.shape in shapes]
  start = time.perf_counter()
  step = jax.jit(step, donate_argnums=(0, 1))
  step_mem = memory(step.lower(params, opt_state).compile())
  update = jax.jit(update, donate_argnums=(0, 1))
  update_mem = memory(update.lower(params, opt_state, grads).compile())
  compile_s = time.perf_counter() - start
  params, opt_state, loss = step(params, opt_state)  # Warm-up.
  update_carry = update(*update_carry, grads)
  jax.block_until_ready((params, update_carry))
  print(f"{name}: compiled in {compile_s:.1f} s, step 0 loss {float(loss):.4f}", flush=True)
  return dict(
    step=step,
    carry=(params, opt_state),
    update=update,
    update_carry=update_carry,
    losses=[float(loss)],
    state_bytes=tree_bytes(opt_state),
    moment_bytes=tree_bytes(moments),
    step_memory=step_mem,
    update_memory=update_mem,
    compile_s=compile_s,
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--length", type=int, default=64)
  parser.add_argument(
    "--optimizers",
    nargs="+",
    default=["adamw", "qsgd"],
    choices=["adamw", "qsgd", "qsgd(direction)", "qsgd(ring)"],
  )
  parser.add_argument(
    "--update-steps", type=int, default=10, help="updates per timed call of the update alone"
  )
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  names = ["adamw"] + [n for n in args.optimizers if n != "adamw"]
  t0 = time.perf_counter()
  model = CausalLM(rngs=nnx.Rngs(0), **GPT2_SMALL)
  graphdef, state = nnx.split(model, nnx.Param)
  params0 = nnx.to_pure_dict(state)  # Plain dicts: see the module doc.
  del model, state
  n_params = int(sum(x.size for x in jax.tree.leaves(params0)))
  print(f"GPT-2-small-shaped CausalLM: {n_params:,} parameters", flush=True)
  tokens = jax.random.randint(
    jax.random.PRNGKey(1), (args.batch, args.length + 1), 0, GPT2_SMALL["vocab_size"]
  )
  grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params0)
  runs = {
    n: setup(n, tx, graphdef, params0, grads, tokens, args.update_steps)
    for n, tx in candidates(names).items()
  }
  del params0

  def advance(run):
    params, opt_state, loss = run["step"](*run["carry"])
    run["carry"] = (params, opt_state)
    run["losses"].append(loss)
    return params

  def advance_update(run):
    run["update_carry"] = run["update"](*run["update_carry"], grads)
    return run["update_carry"][0]

  steps = {n: (lambda run=run: advance(run)) for n, run in runs.items()}
  steps.update({f"{n}/update": (lambda run=run: advance_update(run)) for n, run in runs.items()})
  progress = lambda r: print(f"round {r + 1}/{args.repeats}", flush=True)
  times = interleaved(steps, args.repeats, on_round=progress)
  for n, run in runs.items():
    run["times"], run["update_times"] = times[n], times[f"{n}/update"]
    # Two steps a round (untimed, timed); keep the timed steps' losses.
    run["losses"] = [float(x) for x in run["losses"][:1] + run["losses"][2::2]]

  base = runs["adamw"]
  rows = []
  for name, run in runs.items():
    med = statistics.median(run["times"])
    paired = [t / b for t, b in zip(run["times"], base["times"])]
    upd_call = statistics.median(run["update_times"])  # args.update_steps updates per call
    rows.append(
      dict(
        optimizer=name,
        median_s=med,
        p25_s=float(np.percentile(run["times"], 25)),
        p75_s=float(np.percentile(run["times"], 75)),
        ratio_to_adamw=med / statistics.median(base["times"]),
        median_paired_ratio=statistics.median(paired),
        update_median_s=upd_call / args.update_steps,
        update_ratio_to_adamw=upd_call / statistics.median(base["update_times"]),
        state_bytes=run["state_bytes"],
        state_bytes_minus_adamw=run["state_bytes"] - base["state_bytes"],
        moment_bytes=run["moment_bytes"],
        step_temp_bytes=run["step_memory"].get("temp"),
        update_temp_bytes=run["update_memory"].get("temp"),
        step_memory=run["step_memory"],
        update_memory=run["update_memory"],
        compile_s=run["compile_s"],
        first_loss=run["losses"][0],
        last_loss=run["losses"][-1],
        times_s=run["times"],
        update_times_s=run["update_times"],
      )
    )
  device = jax.devices()[0]
  meta = run_meta(
    repeats=args.repeats,
    n_params=n_params,
    model=GPT2_SMALL,
    batch=args.batch,
    length=args.length,
    learning_rate=LR,
    load_average=os.getloadavg() if hasattr(os, "getloadavg") else None,
    wall_s=time.perf_counter() - t0,
  )
  mib = 2**20
  lines = [
    f"Device: {meta['device']}; jax {meta['jax']}; {meta['date']}; "
    f"GPT-2-small-shaped CausalLM, {n_params:,} parameters, batch {args.batch} x "
    f"{args.length} tokens; {args.repeats} interleaved repeats, median; "
    f"load average at the end {meta['load_average']} (shared machine: noisy).",
    "",
    "| optimizer | step s (p25-p75) | vs adamw | paired | update ms | vs adamw "
    "| state bytes | vs adamw | moments MiB | step temp MiB | update temp MiB |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    temp_s = "" if r["step_temp_bytes"] is None else f"{r['step_temp_bytes'] / mib:.1f}"
    temp_u = "" if r["update_temp_bytes"] is None else f"{r['update_temp_bytes'] / mib:.1f}"
    lines.append(
      f"| {r['optimizer']} | {r['median_s']:.3f} ({r['p25_s']:.3f}-{r['p75_s']:.3f}) | "
      f"{r['ratio_to_adamw']:.3f} | {r['median_paired_ratio']:.3f} | "
      f"{r['update_median_s'] * 1e3:.1f} | {r['update_ratio_to_adamw']:.3f} | "
      f"{r['state_bytes']:,} | {r['state_bytes_minus_adamw']:+d} | "
      f"{r['moment_bytes'] / mib:.1f} | {temp_s} | {temp_u} |"
    )
  lines += [
    "",
    "State bytes: all leaves of the optimizer state. qsgd's extra bytes, if any, are its "
    "step count (int32) and PRNG key (2 x uint32); the moments (leaves shaped like the "
    "params) are AdamW's.",
  ]
  name = f"scale-{device.platform}"
  save(args.out, name, dict(meta=meta, rows=rows), "\n".join(lines))


if __name__ == "__main__":
  main()
