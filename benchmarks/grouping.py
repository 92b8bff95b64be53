"""Which grouping formulation keeps each circuit inside Adam's one loop, per platform.

``qsgd_optax.modulation.GROUPINGS`` holds candidate formulations of the same
values (how a leaf's last axis is split into circuits of ``n_qubits``). For
each formulation and circuit this compiles the donated step (``update`` +
``apply_updates``) of ``qsgd`` and of ``chain(superpose, adamw)`` on one
float32 leaf whose last axis divides by 4 and one whose does not, and prints
XLA's fusion count, params-sized passes and temporary bytes (as
``hlo_fusions.py`` reads them), then times the steps against ``optax.adamw``
(interleaved, medians). The formulation to adopt on a platform is the one
with as many fusions as ``adamw``, no params-sized temporary and the lowest
ratio; ``modulation.grouping`` then changes (with ``jax.lax.platform_dependent``
if platforms disagree).

Run:
  python benchmarks/grouping.py                        # 1024 x 1024 and 1024 x 1023
  python benchmarks/grouping.py --rows 12288 --repeats 7   # ~50M on a GPU
Writes benchmarks/results/grouping-<platform>.{json,md}.
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from _results import save
from _timing import carried, interleaved, run_meta
from hlo_fusions import analyse

import qsgd_optax
from qsgd_optax import modulation

HERE = os.path.dirname(os.path.abspath(__file__))
CIRCUITS = {  # The product circuit is elementwise: no grouping, measured once.
  "default": {},
  "chain": {"entanglement": "chain"},
  "ring": {"entanglement": "ring"},
  "paper": {"entanglement": "chain", "layers": 2},
}


def optimizers(circuit):
  kw = CIRCUITS[circuit]
  return {
    f"qsgd({circuit})": qsgd_optax.qsgd(1e-3, **kw),
    f"superpose({circuit})+adamw": optax.chain(qsgd_optax.superpose(0.5, **kw), optax.adamw(1e-3)),
  }


def measure(shape, repeats):
  rows, steps = [], {}
  p = {"w": jax.random.normal(jax.random.PRNGKey(0), shape)}
  g = {"w": jax.random.normal(jax.random.PRNGKey(1), shape)}
  adamw = optax.adamw(1e-3)
  base = analyse(adamw, shape)
  base.pop("hlo")
  steps["adamw"] = carried(base.pop("compiled"), jax.tree.map(jnp.copy, p), adamw.init(p), g)
  rows.append(dict(grouping="-", optimizer="adamw", shape=list(shape), **base))
  for grouping in modulation.GROUPINGS:
    modulation.grouping = grouping  # Read when a step is traced, so compile here.
    for circuit in CIRCUITS if grouping == "columns" else list(CIRCUITS)[1:]:
      for name, tx in optimizers(circuit).items():
        stats = analyse(tx, shape)  # Compiled now, with this grouping.
        stats.pop("hlo")
        step = stats.pop("compiled")
        rows.append(dict(grouping=grouping, optimizer=name, shape=list(shape), **stats))
        steps[f"{grouping}/{name}"] = carried(step, jax.tree.map(jnp.copy, p), tx.init(p), g)
        mib = stats["temp_bytes"] / 2**20
        print(f"{shape} {grouping:8s} {name:28s} fusions {stats['fusions']}  temp {mib:.1f} MiB")
  modulation.grouping = "columns"
  times = interleaved(steps, repeats)
  base_ms = statistics.median(times["adamw"]) * 1e3
  for row in rows:
    key = "adamw" if row["grouping"] == "-" else f"{row['grouping']}/{row['optimizer']}"
    row["ms"] = statistics.median(times[key]) * 1e3
    row["ratio"] = row["ms"] / base_ms
  return rows


def markdown(rows, meta):
  lines = [
    f"{meta['device']}; jax {meta['jax']}; {meta['date']}; params and state donated; "
    f"{meta['repeats']} interleaved repeats, medians.",
    "",
    "| shape | grouping | optimizer | fusions | params-sized passes | temp MiB | ms | x adamw |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    lines.append(
      f"| {tuple(r['shape'])} | {r['grouping']} | {r['optimizer']} | {r['fusions']} | "
      f"{r['params_sized_passes']} | {r['temp_bytes'] / 2**20:.1f} | {r['ms']:.3f} | "
      f"{r['ratio']:.3f} |"
    )
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--rows", type=int, default=1024)
  parser.add_argument("--columns", type=int, nargs="+", default=[1024, 1023])
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  start = time.time()
  meta = run_meta(repeats=args.repeats)
  rows = []
  for cols in args.columns:
    rows += measure((args.rows, cols), args.repeats)
  md = markdown(rows, meta)
  print(md)
  print(f"# {time.time() - start:.0f} s")
  save(args.out, f"grouping-{jax.devices()[0].platform}", dict(meta=meta, rows=rows), md)


if __name__ == "__main__":
  main()
