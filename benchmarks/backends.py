"""Throughput and agreement of the circuit backends.

For each backend (analytic, pauli, statevector, pennylane), each ``n_qubits``
and each entanglement pattern, times the jitted ``superpose`` update on a
float32 vector of parameters (median of several runs after a warm-up) and
reports parameters per second, with the largest disagreement between
backends. The compiled Pauli form runs where it has at most
``pauli.MAX_TERMS`` terms (the ``terms`` column).

Anchors (``--anchors``): the same circuits on Qiskit Aer (the paper's
simulator; ``EstimatorV2``, exact expectations, all circuits in one
broadcast job) and on PennyLane ``lightning.qubit`` (parameter broadcasting),
on a small batch, from the optional extra ``pip install 'qsgd-optax[anchors]'``;
skipped with a message when not installed.

Threshold (``--threshold``): pauli against statevector over circuits of
growing term count, the measurement behind ``backends.PAULI_MAX_TERMS``.

Run:
  python benchmarks/backends.py                      # full sweep
  python benchmarks/backends.py --headline-only      # 1e6 params, n_qubits=4
  python benchmarks/backends.py --headline-only --anchors
  python benchmarks/backends.py --threshold          # pauli vs statevector
Writes benchmarks/results/backends-<platform>.{json,md,png} (``--name`` to
change), and backends-<platform>-anchors.{json,md},
backends-<platform>-pauli-threshold.{json,md}.
"""

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import RESULTS, save

import qsgd_optax
from qsgd_optax import Gates
from qsgd_optax.backends import analytic, pauli, statevector

BACKENDS = ("analytic", "pauli", "statevector", "pennylane")


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
  circuit = Gates.build(n_qubits, entanglement, layers)
  terms = pauli.term_count(circuit)
  rows, outs = [], {}
  for backend in backends:
    if backend == "analytic" and not circuit.has_closed_form:
      continue
    if backend == "pauli" and terms is None:
      continue
    tx = qsgd_optax.superpose(
      0.5, qsgd_optax.Circuit(n_qubits, entanglement, layers, backend=backend)
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
        terms=terms,
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
    "| backend | n_qubits | entanglement | layers | terms | params | params/s "
    "| max abs diff vs reference* |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    terms = "" if r.get("terms") is None else r["terms"]
    lines.append(
      f"| {r['backend']} | {r['n_qubits']} | {r['entanglement']} | {r['layers']} | "
      f"{terms} | {r['n_params']:.0e} | {r['params_per_s']:.3g} | "
      f"{r['max_abs_diff_vs_reference']:.1e} |"
    )
  return "\n".join(lines)


def _qiskit_aer(circuit):
  """``theta (groups, n) turns -> <Z> (groups, n)`` on Qiskit Aer's EstimatorV2."""
  from qiskit import QuantumCircuit  # pylint: disable=import-outside-toplevel
  from qiskit.circuit import ParameterVector  # pylint: disable=import-outside-toplevel
  from qiskit_aer.primitives import EstimatorV2  # pylint: disable=import-outside-toplevel

  n = circuit.n_qubits
  angles = ParameterVector("phi", n)
  qc = QuantumCircuit(n)
  for gate in circuit.sequence():
    if gate.name == "H":
      qc.h(gate.wires[0])
    elif gate.name == "RY":
      qc.ry(angles[gate.param], gate.wires[0])
    elif gate.name == "RZ":
      qc.rz(angles[gate.param], gate.wires[0])
    else:
      qc.cx(*gate.wires)
  # Qiskit's qubit 0 is the rightmost letter of a Pauli label.
  observables = [["I" * (n - 1 - i) + "Z" + "I" * i for i in range(n)]]
  estimator = EstimatorV2(options={"default_precision": 0.0})  # exact

  def run(theta):
    pub = (qc, observables, np.pi * np.asarray(theta, np.float64)[:, None, :])
    return np.asarray(estimator.run([pub]).result()[0].data.evs)

  return run


def _lightning(circuit):
  """The same on PennyLane ``lightning.qubit``, broadcast over the batch."""
  import pennylane as qml  # pylint: disable=import-outside-toplevel

  from qsgd_optax.backends.pennylane import (  # pylint: disable=import-outside-toplevel
    apply_gates,
  )

  n = circuit.n_qubits

  @qml.qnode(qml.device("lightning.qubit", wires=n), diff_method=None)
  def qnode(phi):
    apply_gates(circuit.sequence(), [phi[:, j] for j in range(n)])
    return [qml.expval(qml.PauliZ(i)) for i in range(n)]

  return lambda theta: np.stack(qnode(np.pi * np.asarray(theta, np.float64)), -1)


ANCHORS = {
  "qiskit-aer EstimatorV2": (("qiskit", "qiskit_aer"), _qiskit_aer),
  "pennylane lightning.qubit": (("pennylane_lightning",), _lightning),
}


def anchors(n_params, repeats, circuits):
  """Anchor rows (parameters per second) for each installed simulator."""
  import importlib.util  # pylint: disable=import-outside-toplevel

  rows = []
  for name, (modules, build) in ANCHORS.items():
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
      print(
        f"skipping anchor {name}: {', '.join(missing)} not installed "
        "(pip install 'qsgd-optax[anchors]')",
        flush=True,
      )
      continue
    for circuit in circuits:
      n = circuit.n_qubits
      groups = max(1, n_params // n)
      theta = np.random.default_rng(n).uniform(-1, 1, (groups, n))
      run = build(circuit)
      run(theta[:2])  # Warm-up (transpilation, device setup).
      times = []
      for _ in range(repeats):
        start = time.perf_counter()
        z = run(theta)
        times.append(time.perf_counter() - start)
      seconds = statistics.median(times)
      t = jnp.asarray(theta, jnp.float32)
      exact = statevector.expectations(circuit, t) if n > 1 or circuit.cnots else None
      exact = analytic.expectations(circuit, t) if circuit.has_closed_form else exact
      diff = float(np.max(np.abs(z - np.asarray(exact, np.float64))))
      rows.append(
        dict(
          backend=name,
          n_qubits=n,
          layers=circuit.layers,
          entanglement=_pattern(circuit),
          n_params=groups * n,
          terms=pauli.term_count(circuit),
          seconds=seconds,
          params_per_s=groups * n / seconds,
          max_abs_diff_vs_reference=diff,
        )
      )
      print(table(rows[-1:]).splitlines()[-1], flush=True)
  return rows


def _pattern(circuit):
  for ent in (None, "chain", "ring"):
    if Gates.build(circuit.n_qubits, ent, circuit.layers) == circuit:
      return str(ent)
  return "custom"


def threshold(n_params, repeats, max_terms):
  """pauli vs statevector params/s (and compile seconds) by term count."""
  rows = []
  configs = [
    (n, ent, layers) for layers in (2, 3, 4) for ent in ("chain", "ring") for n in range(2, 9)
  ]
  for n, ent, layers in configs:
    circuit = Gates.build(n, ent, layers)
    terms = pauli.term_count(circuit)
    if terms is None or terms > max_terms:
      continue
    t = jax.random.uniform(jax.random.PRNGKey(n), (n_params // n, n), minval=-1, maxval=1)
    row = dict(n_qubits=n, entanglement=ent, layers=layers, terms=terms, n_params=t.size)
    for name, fn in (("pauli", pauli.expectations), ("statevector", statevector.expectations)):
      start = time.perf_counter()
      run = jax.jit(lambda x, fn=fn, c=circuit: fn(c, x)).lower(t).compile()
      row[f"{name}_compile_s"] = time.perf_counter() - start
      jax.block_until_ready(run(t))
      times = []
      for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(t))
        times.append(time.perf_counter() - start)
      row[f"{name}_params_per_s"] = t.size / statistics.median(times)
    row["speedup"] = row["pauli_params_per_s"] / row["statevector_params_per_s"]
    rows.append(row)
    print(threshold_table(rows[-1:]).splitlines()[-1], flush=True)
  return rows


def threshold_table(rows):
  lines = [
    "| n_qubits | entanglement | layers | terms | pauli params/s | statevector params/s "
    "| pauli / statevector | pauli compile s | statevector compile s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in sorted(rows, key=lambda r: r["terms"]):
    lines.append(
      f"| {r['n_qubits']} | {r['entanglement']} | {r['layers']} | {r['terms']} | "
      f"{r['pauli_params_per_s']:.3g} | {r['statevector_params_per_s']:.3g} | "
      f"{r['speedup']:.2f} | {r['pauli_compile_s']:.2f} | {r['statevector_compile_s']:.2f} |"
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
    for backend, color in zip(BACKENDS, ("C0", "C3", "C1", "C2")):
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


# (entanglement, layers) of the headline rows at n_qubits=4; ("chain", 2) is
# the paper's circuit.
HEADLINE = ((None, 1), ("chain", 1), ("ring", 1), ("chain", 2), ("ring", 2))


def machine():
  return dict(
    machine=platform.processor() or platform.machine(),
    devices=[str(d) for d in jax.devices()],
    cpu_count=os.cpu_count(),
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
  )


def write_extra(args):
  """--anchors / --threshold: their own result files."""
  meta = machine()
  if args.anchors:
    circuits = [Gates.build(4, ent, layers) for ent, layers in HEADLINE]
    rows = anchors(args.anchor_params, args.repeats, circuits)
    md = (
      f"Machine: {meta}\n\n" + table(rows) + "\n\n*reference: the analytic backend, or "
      "statevector for circuits without a closed form (float32)."
    )
    save(args.out, f"backends-{jax.devices()[0].platform}-anchors", dict(meta=meta, rows=rows), md)
  if args.threshold:
    rows = threshold(args.threshold_params, args.repeats, args.threshold_max_terms)
    md = f"Machine: {meta}\n\n" + threshold_table(rows)
    save(
      args.out,
      f"backends-{jax.devices()[0].platform}-pauli-threshold",
      dict(meta=meta, rows=rows),
      md,
    )


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--headline-params", type=int, default=1_000_000)
  parser.add_argument("--sweep-params", type=int, default=1 << 16)
  parser.add_argument("--qubits", type=int, nargs="+", default=list(range(2, 13)))
  parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--headline-only", action="store_true")
  parser.add_argument(
    "--anchors", action="store_true", help="only the Qiskit Aer / lightning.qubit anchors"
  )
  parser.add_argument("--anchor-params", type=int, default=20_000)
  parser.add_argument(
    "--threshold", action="store_true", help="only pauli vs statevector by term count"
  )
  parser.add_argument("--threshold-params", type=int, default=1 << 16)
  parser.add_argument("--threshold-max-terms", type=int, default=6000)
  parser.add_argument("--out", default=RESULTS)
  parser.add_argument("--name", help="result file name (no extension; default backends-<platform>)")
  parser.add_argument(
    "--plot-only", action="store_true", help="redraw the PNG from an existing <name>.json"
  )
  args = parser.parse_args()
  args.name = args.name or f"backends-{jax.devices()[0].platform}"
  os.makedirs(args.out, exist_ok=True)
  if args.plot_only:
    with open(os.path.join(args.out, args.name + ".json")) as f:
      plot(json.load(f)["rows"], os.path.join(args.out, args.name + ".png"))
    return

  if args.anchors or args.threshold:
    write_extra(args)
    return

  rows = []
  for ent, layers in HEADLINE:
    new = measure(args.headline_params, 4, ent, args.repeats, layers=layers)
    rows += new
    print("\n".join(table(new).splitlines()[2:]), flush=True)
  if not args.headline_only:
    for layers in args.layers:
      for ent in ("chain", "ring"):
        for n in args.qubits:
          new = measure(args.sweep_params, n, ent, args.repeats, layers=layers)
          for r in new:
            r["sweep"] = True
          rows += new
          print("\n".join(table(new).splitlines()[2:]), flush=True)

  meta = machine()
  md = (
    f"Machine: {meta}\n\n" + table(rows) + "\n\n*reference: the "
    "pennylane backend, or statevector where pennylane did not run."
  )
  save(args.out, args.name, dict(meta=meta, rows=rows), md)
  if not args.headline_only:
    plot(rows, os.path.join(args.out, args.name + ".png"))


if __name__ == "__main__":
  main()
