"""Term counts of the compiled Pauli form (``backends.pauli.term_count``).

For ``n_qubits`` 2..8, chain and ring entanglement and 1..4 layers, compiles
the circuit's closed form (numpy, once per circuit) and records the number of
monomials summed over the measured qubits, and the seconds compiling took.
Circuits past ``--max-terms`` live terms are reported as ``> max``.
``backend="auto"`` uses the form up to ``backends.PAULI_MAX_TERMS`` terms.

Run:
  python benchmarks/pauli_terms.py                   # the full table
  python benchmarks/pauli_terms.py --max-terms 100000  # quick
Writes benchmarks/results/pauli_terms-cpu.{json,md} (numpy, on the host CPU).
"""

import argparse
import os
import platform
import time

from _harness import RESULTS, save

from qsgd_optax import Gates
from qsgd_optax.backends import PAULI_MAX_TERMS, pauli


def count(n_qubits, entanglement, layers, max_terms):
  circuit = Gates.build(n_qubits, entanglement, layers)
  start = time.perf_counter()
  terms = pauli.term_count(circuit, max_terms=max_terms)
  seconds = time.perf_counter() - start
  pauli.clear_cache()  # The big forms take memory; none is reused here.
  return dict(
    n_qubits=n_qubits,
    entanglement=entanglement,
    layers=layers,
    terms=terms,
    seconds=seconds,
    max_terms=max_terms,
  )


def markdown(rows, qubits, max_terms):
  lines = [
    "| entanglement | layers | " + " | ".join(f"n={n}" for n in qubits) + " |",
    "| --- | --- | " + " | ".join("---:" for _ in qubits) + " |",
  ]
  for ent in ("chain", "ring"):
    for layers in sorted({r["layers"] for r in rows}):
      cells = []
      for n in qubits:
        r = next(
          r for r in rows if (r["entanglement"], r["layers"], r["n_qubits"]) == (ent, layers, n)
        )
        if r["terms"] is None:
          cells.append(f"> {max_terms:.2g}")
        else:
          mark = "" if r["terms"] <= PAULI_MAX_TERMS else "*"
          cells.append(f"{r['terms']}{mark}")
      lines.append(f"| {ent} | {layers} | " + " | ".join(cells) + " |")
  lines.append("")
  lines.append(
    f"\\* more than `backends.PAULI_MAX_TERMS` = {PAULI_MAX_TERMS}: `backend='auto'` "
    "takes the statevector simulator."
  )
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--qubits", type=int, nargs="+", default=list(range(2, 9)))
  parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3, 4])
  parser.add_argument("--max-terms", type=int, default=1 << 24)
  parser.add_argument("--out", default=RESULTS)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  rows = []
  for ent in ("chain", "ring"):
    for layers in args.layers:
      for n in args.qubits:
        rows.append(count(n, ent, layers, args.max_terms))
        r = rows[-1]
        print(f"{ent:>5} L={layers} n={n}: {r['terms']} terms, {r['seconds']:.2f} s", flush=True)
  meta = dict(
    machine=platform.processor() or platform.machine(),
    date=time.strftime("%Y-%m-%d"),
    max_terms=args.max_terms,
  )
  save(
    args.out,
    "pauli_terms-cpu",
    dict(meta=meta, rows=rows),
    markdown(rows, args.qubits, args.max_terms),
  )


if __name__ == "__main__":
  main()
