"""Cost of the perturbation next to ``optax.adamw``: update time, memory, state.

Times the jitted optimizer step (``update`` plus ``apply_updates``, params and
state donated) of each candidate on parameter trees shaped like a transformer
(embedding, attention and MLP matrices, norm vectors) of about 1M, 10M and
50M float32 entries, plus a bf16 tree. Candidates run interleaved in one
process (shuffled each round, each timed step after an untimed one) so that
machine noise and cache state hit all alike; the table gives
medians and the ratio to ``adamw`` per size, XLA's memory analysis of each
compiled step (temporaries) and the size of each optimizer state.

Run:
  python benchmarks/overhead.py                  # 1M, 10M, 50M + bf16 10M
  python benchmarks/overhead.py --sizes 1e6 --repeats 5   # quick
  python benchmarks/overhead.py --sizes 1e7 --bf16-size 0 --only adamw \\
    "superpose(chain, layers=2)+adamw"           # the paper's circuit
Writes benchmarks/results/overhead-<platform>.{json,md}.
"""

import argparse
import os
import platform
import random
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _results import save

import qsgd_optax

HERE = os.path.dirname(os.path.abspath(__file__))


def transformer_tree(n_params, dtype=jnp.float32, d_model=None, seed=0):
  """A parameter tree shaped like a transformer, of about ``n_params``."""
  if d_model is None:
    d_model = 256 if n_params < 5e6 else 512 if n_params < 3e7 else 1024
  per_layer = 12 * d_model * d_model + 13 * d_model
  n_layers = max(1, round(0.8 * n_params / per_layer))
  vocab = max(256, (n_params - n_layers * per_layer) // d_model)
  shapes = {"embed": (vocab, d_model)}
  for i in range(n_layers):
    shapes.update(
      {
        f"l{i}/qkv": (d_model, 3 * d_model),
        f"l{i}/qkv_b": (3 * d_model,),
        f"l{i}/out": (d_model, d_model),
        f"l{i}/out_b": (d_model,),
        f"l{i}/mlp_in": (d_model, 4 * d_model),
        f"l{i}/mlp_in_b": (4 * d_model,),
        f"l{i}/mlp_out": (4 * d_model, d_model),
        f"l{i}/mlp_out_b": (d_model,),
        f"l{i}/ln1": (d_model,),
        f"l{i}/ln2": (d_model,),
        f"l{i}/ln1_b": (d_model,),
        f"l{i}/ln2_b": (d_model,),
      }
    )
  keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
  return {
    name: (jax.random.normal(k, s, jnp.float32) * 0.02).astype(dtype)
    for k, (name, s) in zip(keys, shapes.items())
  }


def candidates(lr=1e-3, statevector=False):
  """The optimizers timed; ``superpose(chain, layers=2)`` is the paper's
  circuit (4 qubits), on ``backend="auto"`` (the compiled Pauli form) and,
  with ``statevector=True``, on the dense simulator it used before."""
  sp = lambda **kw: optax.chain(qsgd_optax.superpose(0.5, **kw), optax.adamw(lr))
  out = {
    "adamw": optax.adamw(lr),
    "superpose+adamw": sp(),
    "qsgd": qsgd_optax.qsgd(lr),
    "qsgd(update)": qsgd_optax.qsgd(lr, placement="update"),
    "superpose(chain)+adamw": sp(entanglement="chain"),
    "superpose(ring)+adamw": sp(entanglement="ring"),
    "superpose(chain, layers=2)+adamw": sp(entanglement="chain", layers=2),
  }
  if statevector:
    out["superpose(chain, layers=2, statevector)+adamw"] = sp(
      entanglement="chain", layers=2, backend="statevector"
    )
  return out


def tree_bytes(tree):
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def make_step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=(0, 1))


def bench_size(label, n_params, dtype, repeats, names=None, statevector=False):
  params0 = transformer_tree(n_params, dtype)
  grads = jax.tree.map(lambda p: (p * 0.1 + 0.01).astype(p.dtype), params0)
  txs = candidates(statevector=statevector)
  if names:
    txs = {k: v for k, v in txs.items() if k in names}
  runs = {}
  for name, tx in txs.items():
    params = jax.tree.map(jnp.copy, params0)
    state = tx.init(params)
    step = make_step(tx)
    compiled = step.lower(params, state, grads).compile()
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem else None
    params, state = step(params, state, grads)  # Warm-up.
    jax.block_until_ready(params)
    runs[name] = dict(
      step=step,
      params=params,
      state=state,
      times=[],
      state_bytes=tree_bytes(state),
      temp_bytes=temp,
    )
  rng = random.Random(0)
  for _ in range(repeats):  # Interleaved, in a shuffled order each round.
    order = list(runs.items())
    rng.shuffle(order)
    for _, run in order:
      # An untimed step first: time the steady state, not the caches another
      # candidate just left cold.
      run["params"], run["state"] = run["step"](run["params"], run["state"], grads)
      jax.block_until_ready(run["params"])
      start = time.perf_counter()
      run["params"], run["state"] = run["step"](run["params"], run["state"], grads)
      jax.block_until_ready(run["params"])
      run["times"].append(time.perf_counter() - start)
  base = statistics.median(runs["adamw"]["times"])
  rows = []
  for name, run in runs.items():
    med = statistics.median(run["times"])
    rows.append(
      dict(
        size=label,
        n_params=int(sum(p.size for p in jax.tree.leaves(params0))),
        dtype=jnp.dtype(dtype).name,
        optimizer=name,
        median_s=med,
        ratio_to_adamw=med / base,
        state_bytes=run["state_bytes"],
        temp_bytes=run["temp_bytes"],
        repeats=repeats,
        p25_s=float(np.percentile(run["times"], 25)),
        p75_s=float(np.percentile(run["times"], 75)),
      )
    )
    print(
      f"{label:>9} {rows[-1]['dtype']:>8} {name:>34}: {med * 1e3:8.2f} ms "
      f"x{med / base:.3f}  state {run['state_bytes'] / 2**20:.1f} MiB",
      flush=True,
    )
  return rows


def markdown(rows, meta):
  lines = [
    f"Device: {meta['device']}; jax {meta['jax']}; {meta['date']}; "
    f"{meta['repeats']} interleaved repeats, median.",
    "",
    "| params | dtype | optimizer | median ms | ratio to adamw | state MiB | temp MiB |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    temp = "" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.1f}"
    lines.append(
      f"| {r['n_params'] / 1e6:.1f}M | {r['dtype']} | {r['optimizer']} | "
      f"{r['median_s'] * 1e3:.2f} | {r['ratio_to_adamw']:.3f} | "
      f"{r['state_bytes'] / 2**20:.1f} | {temp} |"
    )
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 5e7])
  parser.add_argument("--bf16-size", type=float, default=1e7)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--only", nargs="*", help="optimizer names to run")
  parser.add_argument(
    "--statevector",
    action="store_true",
    help="also time the paper's circuit on the statevector backend (slow)",
  )
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--name", default=None, help="result file name (default overhead-<platform>)")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  device = jax.devices()[0]
  meta = dict(
    device=f"{device.platform}: {getattr(device, 'device_kind', '')} "
    f"({platform.processor() or platform.machine()}, "
    f"{os.cpu_count()} cores)",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    repeats=args.repeats,
  )
  rows = []
  for size in args.sizes:
    rows += bench_size(
      f"{size:.0e}", int(size), jnp.float32, args.repeats, args.only, args.statevector
    )
  if args.bf16_size:
    rows += bench_size(
      f"{args.bf16_size:.0e}",
      int(args.bf16_size),
      jnp.bfloat16,
      args.repeats,
      args.only,
      args.statevector,
    )
  name = args.name or f"overhead-{device.platform}"
  save(args.out, name, dict(meta=meta, rows=rows), markdown(rows, meta))


if __name__ == "__main__":
  main()
