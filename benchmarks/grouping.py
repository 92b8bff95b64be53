"""Which grouping formulation keeps each circuit inside Adam's one loop, per platform.

``qsgd_optax.grouping.GROUPINGS`` holds candidate formulations of the same
values (how a leaf's last axis is split into circuits of ``n_qubits``). For
each formulation and circuit this compiles the donated step (``update`` +
``apply_updates``) of ``qsgd`` and of ``chain(superpose, adamw)`` on one
float32 leaf whose last axis divides by 4 and one whose does not, and prints
XLA's kernels, passes over memory, traffic and temporaries (as
``xla_step.py`` reads them), then times the steps against ``optax.adamw``
(interleaved, medians). The formulation to adopt on a platform is the one
with as many kernels as ``adamw``, no params-sized temporary and the lowest
ratio; it goes in ``grouping.PLATFORM_GROUPING``, which the step reads through
``jax.lax.platform_dependent`` (``grouping.forced`` makes steps take one formulation).
Results before 0.6 also have a ``strided`` formulation, which no platform compiled.

Run:
  python benchmarks/grouping.py                        # 1024 x 1024 and 1024 x 1023
  python benchmarks/grouping.py --rows 12288 --repeats 7   # ~50M on a GPU
Writes benchmarks/results/grouping-<platform>.{json,md}.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from _harness import RESULTS, carried, interleaved, run_meta, save
from xla_step import compile_step, leaves, read

import qsgd_optax
from qsgd_optax.grouping import GROUPINGS, forced

CIRCUITS = {  # The product circuit is elementwise: no grouping, measured once.
  "default": qsgd_optax.Circuit(),
  "chain": qsgd_optax.Circuit(entanglement="chain"),
  "ring": qsgd_optax.Circuit(entanglement="ring"),
  "paper": qsgd_optax.Circuit(entanglement="chain", layers=2),
}


def optimizers(name):
  circuit = CIRCUITS[name]
  return {
    f"qsgd({name})": qsgd_optax.qsgd(1e-3, circuit=circuit),
    f"superpose({name})+adamw": optax.chain(qsgd_optax.superpose(0.5, circuit), optax.adamw(1e-3)),
  }


def analyse(tx, shape):
  """The donated step of ``tx`` compiled for this machine's device, and what XLA made of it."""
  device = jax.devices()[0]
  compiled = compile_step(tx, [shape], device)
  return compiled, read(compiled, [shape], "float32", device.platform == "tpu")._asdict()


def measure(shape, repeats):
  rows, steps = [], {}
  p = {k: jax.random.normal(jax.random.PRNGKey(0), s.shape) for k, s in leaves([shape]).items()}
  g = {k: jax.random.normal(jax.random.PRNGKey(1), s.shape) for k, s in leaves([shape]).items()}
  adamw = optax.adamw(1e-3)
  step, base = analyse(adamw, shape)
  steps["adamw"] = carried(step, jax.tree.map(jnp.copy, p), adamw.init(p), g)
  rows.append(dict(grouping="-", optimizer="adamw", shape=list(shape), **base))
  for grouping in GROUPINGS:
    with forced(grouping):  # Read when a step is traced, so compile here.
      for circuit in CIRCUITS if grouping == "columns" else list(CIRCUITS)[1:]:
        for name, tx in optimizers(circuit).items():
          step, stats = analyse(tx, shape)  # Compiled now, with this grouping.
          rows.append(dict(grouping=grouping, optimizer=name, shape=list(shape), **stats))
          steps[f"{grouping}/{name}"] = carried(step, jax.tree.map(jnp.copy, p), tx.init(p), g)
          print(
            f"{shape} {grouping:8s} {name:28s} kernels {stats['kernels']}  "
            f"traffic {stats['traffic']:.2f}x  temp {stats['temp']:.2f}x"
          )
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
    "| shape | grouping | optimizer | kernels | passes | traffic | temp x params | ms | x adamw |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    lines.append(
      f"| {tuple(r['shape'])} | {r['grouping']} | {r['optimizer']} | {r['kernels']} | "
      f"{r['passes']} | {r['traffic']:.2f}x | {r['temp']:.2f} | {r['ms']:.3f} | "
      f"{r['ratio']:.3f} |"
    )
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--rows", type=int, default=1024)
  parser.add_argument("--columns", type=int, nargs="+", default=[1024, 1023])
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--out", default=RESULTS)
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
