"""Why entangled circuits cost more than the product circuit on XLA:CPU.

A diagnostic, not a target: times one AdamW step (update + apply, float32)
with the perturbation of the 4-qubit chain circuit (1 layer, analytic form)
and of the paper's circuit (chain, 2 layers, compiled Pauli form) for

* two groupings of the parameters into circuits: ``consecutive`` (entries
  ``4g .. 4g+3``, what ``superpose`` does: a group never straddles a shard of
  the last axis) and ``qubit-major`` (entries ``g, g + G, g + 2G, g + 3G``:
  contiguous rows, which XLA:CPU vectorises);
* params and state donated (as in training loops) or not.

Each row reports the same-run median ratio to AdamW (with the same donation)
and XLA's temporary bytes: whenever the step writes the donated params in
place while the circuit reads other entries of its group, XLA materialises
the perturbation (one params-sized temporary) instead of recomputing it in
the ``mu`` and ``nu`` fusions. Run it once as is and once with
``MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000`` to see
how much of the cost is page faults on that fresh temporary.

Run:
  python benchmarks/entangled_layouts.py [--size 1e7] [--repeats 9]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qsgd_optax import Gates
from qsgd_optax.backends import analytic, pauli

N_QUBITS = 4


def chain_one_layer(columns):
  z = [-analytic.sinpi(c) for c in columns]
  out = []
  for parity in Gates.build(N_QUBITS, "chain").parity_sets():
    prod = z[parity[0]]
    for j in parity[1:]:
      prod = prod * z[j]
    out.append(prod)
  return out


def paper_circuit(columns):
  compiled = pauli.compile_circuit(Gates.build(N_QUBITS, "chain", 2))
  return pauli.evaluate_columns(compiled, columns)


def consecutive(circuit, t):
  groups = t.reshape(-1, N_QUBITS)
  z = circuit([groups[:, j] for j in range(N_QUBITS)])
  return jnp.stack(z, -1).reshape(t.shape)


def qubit_major(circuit, t):
  rows = t.reshape(N_QUBITS, -1)
  return jnp.concatenate(circuit([rows[j] for j in range(N_QUBITS)]))


def make_step(z_fn, donate):
  adam = optax.adamw(1e-3)

  def step(p, s, g):
    if z_fn is not None:
      g = g * (1 - 0.5 * z_fn(analytic.reduce_turns(p)))
    u, s = adam.update(g, s, p)
    return optax.apply_updates(p, u), s

  return jax.jit(step, donate_argnums=(0, 1) if donate else ()), adam


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--size", type=float, default=1e7)
  parser.add_argument("--repeats", type=int, default=9)
  args = parser.parse_args()
  n = int(args.size) // N_QUBITS * N_QUBITS
  p0 = jax.random.uniform(jax.random.key(0), (n,), minval=-2, maxval=2)
  g = p0 * 0.1 + 0.01
  candidates = {}
  for donate in (True, False):
    candidates[("adamw", "-", donate)] = make_step(None, donate)
    for cname, circuit in (("chain, 1 layer", chain_one_layer), ("paper", paper_circuit)):
      for lname, layout in (("consecutive", consecutive), ("qubit-major", qubit_major)):
        z_fn = lambda t, c=circuit, lay=layout: lay(c, t)
        candidates[(cname, lname, donate)] = make_step(z_fn, donate)
  state, temp, times = {}, {}, {k: [] for k in candidates}
  for k, (step, adam) in candidates.items():
    s = adam.init(p0)
    temp[k] = step.lower(p0, s, g).compile().memory_analysis().temp_size_in_bytes
    p, s = step(p0 + 0, s, g)
    state[k] = jax.block_until_ready((p, s))
  rng = np.random.default_rng(0)
  keys = list(candidates)
  for _ in range(args.repeats):
    for i in rng.permutation(len(keys)):
      k = keys[i]
      step, _ = candidates[k]
      start = time.perf_counter()
      state[k] = jax.block_until_ready(step(*state[k], g))
      times[k].append(time.perf_counter() - start)
  double = jax.jit(lambda t: t * 2)  # Its output is a fresh params-sized buffer.
  jax.block_until_ready(double(p0))
  fresh = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    jax.block_until_ready(double(p0))
    fresh.append(time.perf_counter() - start)
  print(f"{n:.2e} float32 params, {args.repeats} interleaved repeats, median")
  print(f"t * 2 into a fresh buffer: {statistics.median(fresh) * 1e3:.2f} ms")
  print("| circuit | grouping | donated | ms | ratio to adamw | temp MiB |")
  print("| --- | --- | --- | --- | --- | --- |")
  for k in keys:
    med = statistics.median(times[k])
    base = statistics.median(times[("adamw", "-", k[2])])
    print(
      f"| {k[0]} | {k[1]} | {k[2]} | {med * 1e3:.2f} | {med / base:.2f} | {temp[k] / 2**20:.1f} |"
    )


if __name__ == "__main__":
  main()
