"""Throughput and agreement of the circuit backends.

For each backend (analytic, statevector, pennylane), each ``n_qubits`` and
each entanglement pattern, times the jitted ``superpose`` update on a float32
vector of parameters (median of several runs after a warm-up) and reports
parameters per second, with the largest disagreement between backends.

Run:
  python benchmarks/backends.py                      # full sweep
  python benchmarks/backends.py --headline-only      # 1e6 params, n_qubits=4
Writes benchmarks/results/backends.{json,md,png}.
"""

import argparse
import json
import os
import platform
import statistics
import time

import jax
import numpy as np

import qsgd_optax
from qsgd_optax import PerturbationCircuit

BACKENDS = ("analytic", "statevector", "pennylane")
HERE = os.path.dirname(os.path.abspath(__file__))


def time_update(tx, grads, params, repeats):
  state = tx.init(params)
  update = jax.jit(lambda g, s, p: tx.update(g, s, p)[0])
  jax.block_until_ready(update(grads, state, params))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(update(grads, state, params))
    times.append(time.perf_counter() - start)
  return statistics.median(times), update(grads, state, params)


def measure(n_params, n_qubits, entanglement, repeats, backends=BACKENDS, layers=1):
  key_p, key_g = jax.random.split(jax.random.PRNGKey(n_qubits))
  params = jax.random.uniform(key_p, (n_params,), minval=-2, maxval=2)
  grads = jax.random.normal(key_g, (n_params,))
  circuit = PerturbationCircuit.build(n_qubits, entanglement, layers)
  rows, outs = [], {}
  for backend in backends:
    if backend == "analytic" and not circuit.has_closed_form:
      continue
    tx = qsgd_optax.superpose(
      0.5, n_qubits, entanglement=entanglement, layers=layers, backend=backend
    )
    seconds, out = time_update(tx, grads, params, repeats)
    outs[backend] = np.asarray(out)
    rows.append(
      dict(
        backend=backend,
        n_qubits=n_qubits,
        layers=layers,
        entanglement=str(entanglement),
        n_params=n_params,
        seconds=seconds,
        params_per_s=n_params / seconds,
      )
    )
  ref = outs.get("pennylane", outs.get("statevector"))
  for row in rows:
    row["max_abs_diff_vs_reference"] = float(np.max(np.abs(outs[row["backend"]] - ref)))
  return rows


def table(rows):
  lines = [
    "| backend | n_qubits | entanglement | layers | params | params/s "
    "| max abs diff vs reference* |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    lines.append(
      f"| {r['backend']} | {r['n_qubits']} | {r['entanglement']} | {r['layers']} | "
      f"{r['n_params']:.0e} | {r['params_per_s']:.3g} | "
      f"{r['max_abs_diff_vs_reference']:.1e} |"
    )
  return "\n".join(lines)


def plot(rows, path):
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  panels = sorted({(r["entanglement"], r["layers"]) for r in rows if r.get("sweep")})
  fig, axes = plt.subplots(
    1, len(panels), figsize=(4.5 * len(panels), 4), sharey=True, squeeze=False
  )
  for ax, (ent, layers) in zip(axes[0], panels):
    for backend, color in zip(BACKENDS, ("C0", "C1", "C2")):
      pts = sorted(
        (r["n_qubits"], r["params_per_s"])
        for r in rows
        if r["backend"] == backend
        and r["entanglement"] == ent
        and r["layers"] == layers
        and r.get("sweep")
      )
      if pts:
        ax.plot(*zip(*pts), marker="o", label=backend, color=color)
    ax.set_yscale("log")
    ax.set_xlabel("n_qubits")
    ax.set_title(f"entanglement={ent}, layers={layers}")
    ax.grid(True, which="both", alpha=0.3)
  axes[0, 0].set_ylabel("parameters / second (superpose update)")
  for ax in axes[0]:
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--headline-params", type=int, default=1_000_000)
  parser.add_argument("--sweep-params", type=int, default=1 << 16)
  parser.add_argument("--qubits", type=int, nargs="+", default=list(range(2, 13)))
  parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--headline-only", action="store_true")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument(
    "--plot-only", action="store_true", help="redraw the PNG from an existing backends.json"
  )
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  if args.plot_only:
    with open(os.path.join(args.out, "backends.json")) as f:
      plot(json.load(f)["rows"], os.path.join(args.out, "backends.png"))
    return

  rows = []
  for ent in (None, "chain", "ring"):
    rows += measure(args.headline_params, 4, ent, args.repeats)
    print(table(rows[-3:]).splitlines()[-1], flush=True)
  if not args.headline_only:
    for layers in args.layers:
      for ent in ("chain", "ring"):
        for n in args.qubits:
          new = measure(args.sweep_params, n, ent, args.repeats, layers=layers)
          for r in new:
            r["sweep"] = True
          rows += new
          print("\n".join(table(new).splitlines()[2:]), flush=True)

  meta = dict(
    machine=platform.processor() or platform.machine(),
    devices=[str(d) for d in jax.devices()],
    cpu_count=os.cpu_count(),
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
  )
  with open(os.path.join(args.out, "backends.json"), "w") as f:
    json.dump(dict(meta=meta, rows=rows), f, indent=1)
  md = (
    f"Machine: {meta}\n\n" + table(rows) + "\n\n*reference: the "
    "pennylane backend, or statevector where pennylane did not run."
  )
  with open(os.path.join(args.out, "backends.md"), "w") as f:
    f.write(md + "\n")
  if not args.headline_only:
    plot(rows, os.path.join(args.out, "backends.png"))
  print(md)


if __name__ == "__main__":
  main()
