"""Cost of the perturbation next to ``optax.adamw``: update time, memory, state.

Times the jitted optimizer step (``update`` plus ``apply_updates``, params and
state donated) of each candidate on parameter trees shaped like a transformer
(embedding, attention and MLP matrices, norm vectors) of about 1M, 10M and
50M float32 entries, plus a bf16 tree. Candidates run interleaved in one
process (shuffled each round, each timed step after an untimed one) so that
machine noise and cache state hit all alike; the table gives
medians and the ratio to ``adamw`` per size, XLA's memory analysis of each
compiled step (temporaries) and the size of each optimizer state.

Roofline: every Adam-class step reads ``p, g, mu, nu`` and writes ``p, mu,
nu``: 7 arrays, 28 bytes per float32 parameter (14 in bfloat16), counted the
same for every candidate. The table gives that traffic over the median time
(GB/s) and, where the device's spec-sheet bandwidth is known
(:data:`SPEC_BANDWIDTH`, or ``--spec-gbps``), its fraction. Each size runs on
four layouts (``--layouts``): ``tree`` (transformer-shaped leaves), ``flat``
(one leaf of the same size), ``odd`` (one ``(n / 1023, 1023)`` matrix, whose
last axis does not divide by 4) and ``flatten`` (the tree, each optimizer wrapped
in ``optax.flatten``), since many small leaves can cost bandwidth.

Run:
  python benchmarks/overhead.py                  # 1M, 10M, 50M + bf16 10M
  python benchmarks/overhead.py --sizes 1e6 --repeats 5   # quick
  python benchmarks/overhead.py --sizes 1e7 --bf16-size 0 --only adamw \\
    "superpose(chain, layers=2)+adamw"           # the paper's circuit
  python benchmarks/overhead.py --summarize RUN1 RUN2   # ranges over saved runs
  python benchmarks/overhead.py --grouping strided      # force one grouping formulation
Writes benchmarks/results/overhead-<platform>.{json,md}.
"""

import argparse
import os
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _harness import RESULTS, carried, interleaved, run_meta, save, tree_bytes

import qsgd_optax
from qsgd_optax import Circuit, grouping

# Spec-sheet memory bandwidth (bytes/s) by device kind (SXM parts).
SPEC_BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12}
LAYOUTS = ("tree", "flat", "odd", "flatten")


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
  """The optimizers timed; ``layers=2`` with ``"chain"`` is the paper's
  circuit (4 qubits), on ``backend="auto"`` (the compiled Pauli form) and,
  with ``statevector=True``, on the dense simulator it used before.
  ``superpose(...)+adamw`` is the composable chain; ``qsgd`` the alias, on
  the same optax Adam state."""
  sp = lambda c: optax.chain(qsgd_optax.superpose(0.5, c), optax.adamw(lr))
  chain, ring = Circuit(entanglement="chain"), Circuit(entanglement="ring")
  paper = Circuit(entanglement="chain", layers=2)
  out = {
    "adamw": optax.adamw(lr),
    "superpose+adamw": sp(Circuit()),
    "qsgd": qsgd_optax.qsgd(lr),
    "qsgd(update)": qsgd_optax.qsgd(lr, placement="update"),
    "superpose(chain)+adamw": sp(chain),
    "qsgd(chain)": qsgd_optax.qsgd(lr, circuit=chain),
    "superpose(ring)+adamw": sp(ring),
    "qsgd(ring)": qsgd_optax.qsgd(lr, circuit=ring),
    "superpose(chain, layers=2)+adamw": sp(paper),
    "qsgd(chain, layers=2)": qsgd_optax.qsgd(lr, circuit=paper),
  }
  if statevector:
    out["superpose(chain, layers=2, statevector)+adamw"] = sp(
      Circuit(entanglement="chain", layers=2, backend="statevector")
    )
  return out


def make_step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=(0, 1))


def layout_params(layout, n_params, dtype):
  """The parameters of a layout (see the module doc)."""
  tree = transformer_tree(n_params, dtype)
  if layout in ("tree", "flatten"):
    return tree
  size = sum(x.size for x in jax.tree.leaves(tree))
  # "odd": a matrix whose last axis does not divide by 4 (padded groups).
  shape = (size,) if layout == "flat" else (size // 1023, 1023)
  return {"w": jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float32).astype(dtype) * 0.02}


def spec_bandwidth(device, spec_gbps=None):
  if spec_gbps:
    return spec_gbps * 1e9
  kind = getattr(device, "device_kind", "")
  return next((bw for name, bw in SPEC_BANDWIDTH.items() if name in kind), None)


def bench_size(
  label, n_params, dtype, repeats, names=None, statevector=False, layout="tree", spec=None
):
  params0 = layout_params(layout, n_params, dtype)
  grads = jax.tree.map(lambda p: (p * 0.1 + 0.01).astype(p.dtype), params0)
  txs = candidates(statevector=statevector)
  if names:
    txs = {k: v for k, v in txs.items() if k in names}
  if layout == "flatten":
    txs = {k: optax.flatten(v) for k, v in txs.items()}
  runs, steps = {}, {}
  for name, tx in txs.items():
    params = jax.tree.map(jnp.copy, params0)
    state = tx.init(params)
    step = make_step(tx)
    compiled = step.lower(params, state, grads).compile()
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem else None
    runs[name] = dict(state_bytes=tree_bytes(state), temp_bytes=temp)
    steps[name] = carried(step, params, state, grads)
  times = interleaved(steps, repeats)
  base = statistics.median(times["adamw"])
  n = int(sum(p.size for p in jax.tree.leaves(params0)))
  traffic = 7 * n * jnp.dtype(dtype).itemsize
  rows = []
  for name, run in runs.items():
    med = statistics.median(times[name])
    rows.append(
      dict(
        layout=layout,
        size=label,
        n_params=n,
        dtype=jnp.dtype(dtype).name,
        optimizer=name,
        median_s=med,
        ratio_to_adamw=med / base,
        gb_per_s=traffic / med / 1e9,
        spec_fraction=None if spec is None else traffic / med / spec,
        state_bytes=run["state_bytes"],
        temp_bytes=run["temp_bytes"],
        repeats=repeats,
        p25_s=float(np.percentile(times[name], 25)),
        p75_s=float(np.percentile(times[name], 75)),
      )
    )
    print(
      f"{layout:>7} {label:>9} {rows[-1]['dtype']:>8} {name:>34}: {med * 1e3:8.2f} ms "
      f"x{med / base:.3f}  {rows[-1]['gb_per_s']:.1f} GB/s",
      flush=True,
    )
  return rows


def markdown(rows, meta):
  lines = [
    f"Device: {meta['device']}; jax {meta['jax']}; {meta['date']}; "
    f"{meta['repeats']} interleaved repeats, median. GB/s: 7 arrays (p, g, mu, nu read; "
    "p, mu, nu written) per step over the median; of spec: that over the spec-sheet "
    f"bandwidth ({meta['spec_gbps'] or 'unknown'} GB/s).",
    "",
    "| layout | params | dtype | optimizer | median ms | ratio to adamw | GB/s | of spec "
    "| state MiB | temp MiB |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    temp = "" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.1f}"
    spec = "" if r.get("spec_fraction") is None else f"{r['spec_fraction']:.0%}"
    lines.append(
      f"| {r.get('layout', 'tree')} | {r['n_params'] / 1e6:.1f}M | {r['dtype']} | "
      f"{r['optimizer']} | {r['median_s'] * 1e3:.2f} | {r['ratio_to_adamw']:.3f} | "
      f"{r.get('gb_per_s', 0):.1f} | {spec} | {r['state_bytes'] / 2**20:.1f} | {temp} |"
    )
  return "\n".join(lines)


def summary(names, out):
  """Markdown: per layout and optimizer, the ratio to AdamW of each size over
  several runs' results (``min-max``), and GB/s likewise."""
  import json
  from collections import defaultdict

  cells = defaultdict(list)
  sizes, optimizers, layouts, metas = [], [], [], []
  for name in names:
    with open(os.path.join(out, name + ".json")) as f:
      data = json.load(f)
    metas.append(data["meta"])
    for r in data["rows"]:
      key = (r.get("layout", "tree"), r["optimizer"], f"{r['n_params'] / 1e6:.0f}M {r['dtype']}")
      cells[key].append((r["ratio_to_adamw"], r["gb_per_s"]))
      for seq, x in ((sizes, key[2]), (optimizers, key[1]), (layouts, key[0])):
        if x not in seq:
          seq.append(x)
  span = lambda xs, fmt: f"{min(xs):{fmt}}-{max(xs):{fmt}}" if len(xs) > 1 else f"{xs[0]:{fmt}}"
  lines = [
    f"{len(names)} runs ({', '.join(names)}); {metas[0]['device']}; jax {metas[0]['jax']}; "
    f"{metas[0]['date']}. Ratio to AdamW (min-max over the runs) and GB/s.",
    "",
    "| layout | optimizer | " + " | ".join(f"{s} ratio | {s} GB/s" for s in sizes) + " |",
    "| --- | --- | " + " | ".join("--- | ---" for _ in sizes) + " |",
  ]
  for layout in layouts:
    for opt in optimizers:
      row = []
      for size in sizes:
        got = cells.get((layout, opt, size), [])
        if not got:
          row += ["", ""]
          continue
        row += [span([g[0] for g in got], ".2f"), span([g[1] for g in got], ".1f")]
      lines.append(f"| {layout} | {opt} | " + " | ".join(row) + " |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument(
    "--summarize", nargs="+", metavar="NAME", help="only print the summary of these results"
  )
  parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 5e7])
  parser.add_argument("--bf16-size", type=float, default=1e7)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--only", nargs="*", help="optimizer names to run")
  parser.add_argument(
    "--statevector",
    action="store_true",
    help="also time the paper's circuit on the statevector backend (slow)",
  )
  parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
  parser.add_argument("--spec-gbps", type=float, help="spec-sheet memory bandwidth, GB/s")
  parser.add_argument(
    "--grouping",
    default=None,
    choices=list(grouping.GROUPINGS),
    help="how a leaf is split into circuits (qsgd_optax.grouping.GROUPINGS; "
    "default: the platform's, grouping.PLATFORM_GROUPING)",
  )
  parser.add_argument("--out", default=RESULTS)
  parser.add_argument("--name", default=None, help="result file name (default overhead-<platform>)")
  args = parser.parse_args()
  if args.summarize:
    print(summary(args.summarize, args.out))
    return
  os.makedirs(args.out, exist_ok=True)
  with grouping.forced(args.grouping):  # Every step is traced inside.
    device = jax.devices()[0]
    meta = run_meta(repeats=args.repeats, grouping=args.grouping)
    spec = spec_bandwidth(device, args.spec_gbps)
    meta["spec_gbps"] = None if spec is None else spec / 1e9
    runs = [(size, jnp.float32) for size in args.sizes]
    runs += [(args.bf16_size, jnp.bfloat16)] if args.bf16_size else []
    rows = []
    for size, dtype in runs:
      for layout in args.layouts:
        rows += bench_size(
          f"{size:.0e}", int(size), dtype, args.repeats, args.only, args.statevector, layout, spec
        )
  name = args.name or f"overhead-{device.platform}"
  save(args.out, name, dict(meta=meta, rows=rows), markdown(rows, meta))


if __name__ == "__main__":
  main()
