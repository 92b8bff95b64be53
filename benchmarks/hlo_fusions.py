"""What XLA makes of one optimizer step: fusions, passes over memory, temporaries.

Compiles the jitted step (``update`` + ``apply_updates``, params and state
donated, as ``benchmarks/overhead.py`` times it) of each candidate on one
float32 leaf and reads the optimized HLO of the entry computation: how many
fusions (kernels) it runs, how many of them read or write a params-sized
array (each is one pass over memory), how many read the parameters, and
XLA's temporary bytes. AdamW's ideal is one pass reading ``p, g, mu, nu`` and
writing ``p, mu, nu``; the circuit adds arithmetic, and should add no pass
and no temporary.

Run:
  python benchmarks/hlo_fusions.py              # 1024 x 1024 leaf
  python benchmarks/hlo_fusions.py --dump /tmp/hlo   # also write each HLO text
Writes benchmarks/results/hlo-<platform>.{json,md}.
"""

import argparse
import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from _results import save
from overhead import candidates, make_step

HERE = os.path.dirname(os.path.abspath(__file__))


def entry_fusions(hlo: str) -> tuple[str, list[str]]:
  """The name of the entry computation's first parameter (the params leaf)
  and its fusion instructions, one line each."""
  entry = hlo[hlo.index("\nENTRY") :]
  first = re.search(r"\((\S+?): ", entry).group(1)
  return first, [line for line in entry.splitlines() if re.search(r"= \S+ fusion\(", line)]


def elements(line: str) -> int:
  """Elements of the (first) array a fusion instruction produces."""
  dims = re.search(r"= \(?\w+\[([\d,]*)\]", line).group(1)
  return int(np.prod([int(d) for d in dims.split(",") if d]))


def analyse(tx, shape):
  p = {"w": jnp.ones(shape, jnp.float32)}
  compiled = make_step(tx).lower(p, tx.init(p), p).compile()
  first, fusions = entry_fusions(compiled.as_text())
  full = [f for f in fusions if elements(f) == int(np.prod(shape))]
  operands = lambda f: f.split("fusion(", 1)[1].split(")", 1)[0].split(", ")
  params_in = [f for f in full if f"%{first}" in operands(f)]
  mem = compiled.memory_analysis()
  return dict(
    fusions=len(fusions),
    params_sized_passes=len(full),
    passes_reading_params=len(params_in),
    temp_bytes=getattr(mem, "temp_size_in_bytes", None),
    hlo=compiled.as_text(),
    compiled=compiled,
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--shape", type=int, nargs="+", default=[1024, 1024])
  parser.add_argument("--dump", help="folder to write each candidate's optimized HLO")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  device = jax.devices()[0]
  rows = []
  for name, tx in candidates().items():
    row = dict(optimizer=name, **analyse(tx, tuple(args.shape)))
    hlo = row.pop("hlo")
    row.pop("compiled")
    if args.dump:
      os.makedirs(args.dump, exist_ok=True)
      with open(os.path.join(args.dump, re.sub(r"\W+", "_", name) + ".hlo"), "w") as f:
        f.write(hlo)
    rows.append(row)
  leaf_mib = 4 * int(jnp.prod(jnp.array(args.shape))) / 2**20
  md = "\n".join(
    [
      f"{device.platform} ({getattr(device, 'device_kind', '')}); jax {jax.__version__}; "
      f"{time.strftime('%Y-%m-%d')}; one float32 leaf {tuple(args.shape)} ({leaf_mib:.0f} MiB), "
      "params and state donated.",
      "",
      "| optimizer | fusions | params-sized passes | passes reading params | temp MiB |",
      "| --- | --- | --- | --- | --- |",
      *(
        f"| {r['optimizer']} | {r['fusions']} | {r['params_sized_passes']} | "
        f"{r['passes_reading_params']} | {r['temp_bytes'] / 2**20:.1f} |"
        for r in rows
      ),
    ]
  )
  save(args.out, f"hlo-{device.platform}", dict(shape=args.shape, rows=rows), md)


if __name__ == "__main__":
  main()
