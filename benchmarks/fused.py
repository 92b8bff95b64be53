"""One pass: the formulations tried for issue 17, measured on any platform.

Issue 17 asks that a leaf's modulation be computed once per step, in the same
fused loop that updates Adam's moments, with no params-sized temporary. On
XLA:CPU a step is one loop per fusion and sibling fusions are never merged
(``benchmarks/hlo_fusions.py``): optax's new ``mu`` and new ``nu`` are two
passes, each reading the parameters and evaluating the circuit. This script
times, on one flat float32 leaf and beside ``optax.adamw`` in the same run,
each way of getting one evaluation tried, all the same optimizer as ``qsgd``
(the gradient placement; the largest difference from ``qsgd``'s parameters
after 3 steps is printed):

* ``superpose+adamw``: the composable chain, optax's Adam (moments apart);
* ``qsgd``: the library, whose Adam keeps both moments of a leaf in one
  complex array (:mod:`qsgd_optax.packed_adam`), the formulation adopted;
* ``while-loop chunks``: the moments updated chunk by chunk (64Ki entries,
  cache-sized) in a ``fori_loop`` writing the donated buffers in place
  (``dynamic_update_slice``), the circuit evaluated once per chunk;
* ``static chunks``: the same with 16 chunks unrolled at trace time;
* ``interleaved moments``: ``mu`` and ``nu`` stored as one array of shape
  ``p.shape + (2,)``, so that one fusion writes both and LLVM shares the
  circuit between the two entries of each pair;
* ``select columns`` (entangled circuits): the library's step, but each
  entry's ``<Z_i>`` picked from its group's per-qubit polynomials by a
  ``select`` on ``i`` instead of stacking the columns (a ``concatenate``,
  which XLA:CPU will not fuse into the moments' loops): no temporary, every
  entry evaluates its whole group's polynomials (``pauli.evaluate_columns``);
  also with interleaved and with packed moments.

Each row gives the entry computation's fusions and while loops, XLA's
temporary bytes, the median step (update + apply, params and state donated)
and its ratio to AdamW's.

Run:
  python benchmarks/fused.py                 # 10M entries, 9 repeats
  python benchmarks/fused.py --size 1e6 --repeats 3   # quick
Writes benchmarks/results/fused-<platform>.{json,md}.
"""

import argparse
import itertools
import os
import statistics

import jax
import jax.numpy as jnp
import optax
from _results import save
from _timing import carried, interleaved, run_meta
from hlo_fusions import entry_fusions
from jax import lax
from overhead import make_step

import qsgd_optax
from qsgd_optax import backends
from qsgd_optax.backends import pauli
from qsgd_optax.circuit import PerturbationCircuit
from qsgd_optax.modulation import LeafRule, modulate_leaf

HERE = os.path.dirname(os.path.abspath(__file__))
LR, B1, B2, EPS, WD, LAM = 1e-3, 0.9, 0.999, 1e-8, 1e-4, 0.5
CHUNK = 65536
# name -> (entanglement, layers); the last is the paper's circuit.
CIRCUITS = {"product (default)": (None, 1), "chain": ("chain", 1), "paper": ("chain", 2)}


def rule_for(entanglement, layers):
  circuit = PerturbationCircuit.build(4, entanglement, layers)
  return LeafRule(*backends.select(circuit, "auto"), 4)


def select_rule(entanglement, layers):
  """The circuit's compiled form, each entry's ``<Z_i>`` selected from its
  group's ``n`` polynomials (evaluated on ``(..., 1)`` column slices)."""
  compiled = pauli.compile_circuit(PerturbationCircuit.build(4, entanglement, layers))

  def expval(t):
    outs = pauli.evaluate_columns(compiled, [t[..., j : j + 1] for j in range(4)])
    qubit = lax.broadcasted_iota(jnp.int32, t.shape, t.ndim - 1)
    z = jnp.broadcast_to(outs[-1], t.shape)
    for i in range(2, -1, -1):
      z = jnp.where(qubit == i, outs[i], z)
    return z

  return LeafRule(expval, False, 4)


def adam_params(p, mu, nu, count):
  """The params pass of AdamW, as optax writes it (bias correction, decay, lr)."""
  mu_hat = mu / (1 - B1**count).astype(mu.dtype)
  nu_hat = nu / (1 - B2**count).astype(nu.dtype)
  return p - LR * (mu_hat / (jnp.sqrt(nu_hat) + EPS) + WD * p)


def moments(rule, p, g, mu, nu):
  gp = modulate_leaf(rule, "factor", g, p, LAM)
  return (1 - B1) * gp + B1 * mu, (1 - B2) * gp * gp + B2 * nu


def while_loop_step(rule):
  def step(p, state, g):
    mu, nu, count = state
    count = optax.safe_increment(count)

    def body(i, carry):
      s = i * CHUNK
      cut = lambda a: lax.dynamic_slice(a, (s,), (CHUNK,))
      m, v = moments(rule, cut(p), cut(g), cut(carry[0]), cut(carry[1]))
      put = lambda a, x: lax.dynamic_update_slice(a, x, (s,))
      return put(carry[0], m), put(carry[1], v)

    whole = p.size // CHUNK * CHUNK
    mu, nu = lax.fori_loop(0, p.size // CHUNK, body, (mu, nu))
    m, v = moments(rule, p[whole:], g[whole:], mu[whole:], nu[whole:])
    mu, nu = mu.at[whole:].set(m), nu.at[whole:].set(v)
    return adam_params(p, mu, nu, count), (mu, nu, count)

  return step


def static_chunks_step(rule, chunks=16):
  def step(p, state, g):
    mu, nu, count = state
    count = optax.safe_increment(count)
    bounds = [p.size * i // chunks // 4 * 4 for i in range(chunks)] + [p.size]
    for a, b in itertools.pairwise(bounds):
      m, v = moments(rule, p[a:b], g[a:b], mu[a:b], nu[a:b])
      mu, nu = mu.at[a:b].set(m), nu.at[a:b].set(v)
    return adam_params(p, mu, nu, count), (mu, nu, count)

  return step


def interleaved_step(rule):
  def step(p, state, g):
    pair, count = state
    count = optax.safe_increment(count)
    gp = modulate_leaf(rule, "factor", g, p, LAM)[..., None]
    decay = jnp.array([B1, B2], p.dtype)
    new = (1 - decay) * jnp.where(jnp.array([False, True]), gp * gp, gp) + decay * pair
    return adam_params(p, new[..., 0], new[..., 1], count), (new, count)

  return step


def split_step(rule):
  """``qsgd``'s step (mu and nu apart) with another way to evaluate the circuit."""

  def step(p, state, g):
    mu, nu, count = state
    mu, nu = moments(rule, p, g, mu, nu)
    count = optax.safe_increment(count)
    return adam_params(p, mu, nu, count), (mu, nu, count)

  return step


def packed_step(rule):
  """``qsgd``'s packed moments (one complex array) with another way to
  evaluate the circuit."""

  def step(p, state, g):
    pair, count = state
    count = optax.safe_increment(count)
    gp = modulate_leaf(rule, "factor", g, p, LAM)
    mu = (1 - B1) * gp + B1 * jnp.real(pair)
    pair = lax.optimization_barrier(lax.complex(mu, (1 - B2) * gp * gp + B2 * jnp.imag(pair)))
    return adam_params(p, jnp.real(pair), jnp.imag(pair), count), (pair, count)

  return step


def variants(entanglement, layers):
  """name -> (jitted donated step, its initial state) for one flat leaf."""
  rule = rule_for(entanglement, layers)
  qsgd = qsgd_optax.qsgd(LR, LAM, entanglement=entanglement, layers=layers, weight_decay=WD)
  split = lambda p: (jnp.zeros_like(p), jnp.zeros_like(p), jnp.zeros([], jnp.int32))
  pair = lambda p: (jnp.zeros((*p.shape, 2), p.dtype), jnp.zeros([], jnp.int32))
  jit = lambda f: jax.jit(f, donate_argnums=(0, 1))
  chain = optax.chain(
    qsgd_optax.superpose(LAM, entanglement=entanglement, layers=layers),
    optax.adamw(LR, weight_decay=WD),
  )
  out = {
    "superpose+adamw": (make_step(chain), chain.init),
    "qsgd": (make_step(qsgd), qsgd.init),
    "while-loop chunks": (jit(while_loop_step(rule)), split),
    "static chunks": (jit(static_chunks_step(rule)), split),
    "interleaved moments": (jit(interleaved_step(rule)), pair),
  }
  if entanglement is not None:
    selected = select_rule(entanglement, layers)
    out["select columns"] = (jit(split_step(selected)), split)
    out["select columns, interleaved"] = (jit(interleaved_step(selected)), pair)
    packed = lambda p: (jnp.zeros(p.shape, jnp.complex64), jnp.zeros([], jnp.int32))
    out["select columns, packed"] = (jit(packed_step(selected)), packed)
  return out


def measure(size, repeats, circuit):
  p0 = jax.random.normal(jax.random.PRNGKey(0), (size,), jnp.float32) * 0.02
  g = p0 * 0.1 + 0.01
  adamw = optax.adamw(LR, weight_decay=WD)
  cands = {"adamw": (make_step(adamw), adamw.init), **variants(*CIRCUITS[circuit])}
  rows, steps, finals = {}, {}, {}
  for name, (step, init) in cands.items():
    compiled = step.lower(p0, init(p0), g).compile()
    _, fusions = entry_fusions(compiled.as_text())
    rows[name] = dict(
      fusions=len(fusions),
      while_loops=compiled.as_text().split("\nENTRY", 1)[1].count(" while("),
      temp_bytes=compiled.memory_analysis().temp_size_in_bytes,
    )
    steps[name] = carried(step, jnp.copy(p0), init(p0), g)
    for _ in range(2):
      steps[name]()
    finals[name] = jnp.copy(steps[name]())  # 3 steps; the next ones donate it
  times = interleaved(steps, repeats)
  base = statistics.median(times["adamw"])
  out = []
  for name, row in rows.items():
    med = statistics.median(times[name])
    diff = None if name == "adamw" else float(jnp.max(jnp.abs(finals[name] - finals["qsgd"])))
    out.append(
      dict(
        circuit=circuit,
        variant=name,
        **row,
        median_s=med,
        ratio_to_adamw=med / base,
        max_diff_to_qsgd=diff,
      )
    )
    print(f"{out[-1]['circuit']:>18} {name:>20}: {med * 1e3:8.2f} ms x{med / base:.3f}", flush=True)
  return out


def markdown(rows, meta):
  lines = [
    f"Device: {meta['device']}; jax {meta['jax']}; {meta['date']}; one float32 leaf of "
    f"{meta['size']:,} entries, params and state donated; {meta['repeats']} interleaved "
    "repeats, median. Max diff: largest difference from `qsgd`'s params after 3 steps.",
    "",
    "| circuit | variant | fusions | while loops | temp MiB | median ms | ratio to adamw "
    "| max diff |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    diff = "" if r["max_diff_to_qsgd"] is None else f"{r['max_diff_to_qsgd']:.1e}"
    lines.append(
      f"| {r['circuit']} | {r['variant']} | {r['fusions']} | {r['while_loops']} | "
      f"{r['temp_bytes'] / 2**20:.1f} | {r['median_s'] * 1e3:.2f} | "
      f"{r['ratio_to_adamw']:.3f} | {diff} |"
    )
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--size", type=float, default=1e7)
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  size = int(args.size)
  meta = run_meta(repeats=args.repeats, size=size)
  rows = [row for circuit in CIRCUITS for row in measure(size, args.repeats, circuit)]
  name = f"fused-{jax.devices()[0].platform}"
  save(args.out, name, dict(meta=meta, rows=rows), markdown(rows, meta))


if __name__ == "__main__":
  main()
