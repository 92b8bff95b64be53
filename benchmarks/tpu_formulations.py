"""Formulations of the grouped evaluation that the package does not ship, measured for XLA:TPU.

The TPU compiles ``shifted-stored`` (``qsgd_optax.grouping``): it reads a group's neighbours
through shifts of the whole last axis, which XLA:TPU fuses into AdamW's pass, but which XLA's
partitioner cannot prove stay inside a shard, so under automatic sharding it exchanges halos
(collective-permutes) wherever the last axis is sharded. This script asks, of each candidate,
the two questions a TPU formulation must answer:

  halos     collective-permutes (and any other collective) in the update of a (64, 96) leaf
            sharded over 8 host devices, on its last axis (12 entries each) and on a 2 x 4
            mesh (24 each), automatic sharding; every shard holds whole groups
  v5e       the whole train step (``xla_train_step.py``: GPT-2, 2 layers, 1x512, float32) on one
            compile-only TPU v5e, ``qsgd(chain)`` against AdamW's: extra kernels, traffic and
            temp in params-bytes (pb), and XLA:TPU's estimated cycles

Candidates, besides the package's formulations (all compute the same values as ``columns``,
which the script checks on the leaf):
  strided      strided slices ``t[..., j::n]`` (one per qubit), the circuit evaluated once per
               group on them, the outputs interleaved back
  regrouped    ``shifted-in-groups``'s shifts inside the ``(groups, n)`` view, each shifted copy
               viewed back as the flat axis before the circuit reads it
  rows         grouping along the second-to-last axis instead (a different circuit assignment):
               the ``(rows / n, n, columns)`` view, lanes untouched
  row-shifts   the same grouping, read through shifts of the rows (``shifted-stored`` on rows)
  gathered     ``shifted-stored``'s shifts, but each qubit's angle selected by position first,
               so that each entry evaluates its circuit once, on 4 angles, instead of once per
               position on shifted copies

Run (``pip install -e '.[compilers]'``; compiler analysis, not timings):
  python benchmarks/tpu_formulations.py --out benchmarks/results/tpu_formulations-tpu
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import time
from collections.abc import Iterator

import _xla
import jax
import jax.numpy as jnp
import numpy as np
import xla_train_step
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import qsgd_optax
from qsgd_optax._src import grouping
from qsgd_optax.backends import Backend


def _strided(backend: Backend, n: int, t: jax.Array) -> jax.Array:
  assert backend.columns is not None
  columns = [jax.lax.slice_in_dim(t, j, t.shape[-1], stride=n, axis=-1) for j in range(n)]
  return jnp.stack(backend.columns(columns, None), axis=-1).reshape(t.shape)


def _regrouped(backend: Backend, n: int, theta: jax.Array, prepare) -> jax.Array:
  length = theta.shape[-1]
  pad = -length % n
  whole = jnp.pad(theta, [(0, 0)] * (theta.ndim - 1) + [(0, pad)]) if pad else theta
  view = whole.reshape((*theta.shape[:-1], (length + pad) // n, n))
  wide = jnp.pad(view, [(0, 0)] * (view.ndim - 1) + [(n - 1, n - 1)])
  read = lambda d: jax.lax.slice_in_dim(wide, n - 1 + d, 2 * n - 1 + d, axis=-1)
  flat = lambda d: read(d).reshape(whole.shape)
  position = jax.lax.broadcasted_iota(jnp.int32, whole.shape, whole.ndim - 1) % n
  out = grouping._by_position(backend, n, lambda d: prepare(flat(d)), position)
  return out[..., :length] if pad else out


def _rows(backend: Backend, n: int, theta: jax.Array, prepare) -> jax.Array:
  if theta.ndim < 2:
    return grouping.GROUPINGS["columns"](backend, n, theta, prepare)
  assert backend.columns is not None
  rows, pad = theta.shape[-2], -theta.shape[-2] % n
  t = jnp.pad(prepare(theta), [(0, 0)] * (theta.ndim - 2) + [(0, pad), (0, 0)])
  view = t.reshape((*t.shape[:-2], t.shape[-2] // n, n, t.shape[-1]))
  z = jnp.stack(backend.columns([view[..., j, :] for j in range(n)], None), axis=-2)
  return z.reshape(t.shape)[..., :rows, :]


def _row_shifts(backend: Backend, n: int, theta: jax.Array, prepare) -> jax.Array:
  if theta.ndim < 2:
    return grouping.GROUPINGS["columns"](backend, n, theta, prepare)
  rows = theta.shape[-2]
  wide = jnp.pad(theta, [(0, 0)] * (theta.ndim - 2) + [(n - 1, n - 1), (0, 0)])
  shifted = lambda d: prepare(jax.lax.slice_in_dim(wide, n - 1 + d, n - 1 + d + rows, axis=-2))
  position = jax.lax.broadcasted_iota(jnp.int32, theta.shape, theta.ndim - 2) % n
  return grouping._by_position(backend, n, shifted, position)


def _gathered(backend: Backend, n: int, theta: jax.Array, prepare) -> jax.Array:
  assert backend.columns is not None
  length = theta.shape[-1]
  wide = jnp.pad(theta, [(0, 0)] * (theta.ndim - 1) + [(n - 1, n - 1)])
  shifted = lambda d: jax.lax.slice_in_dim(wide, n - 1 + d, n - 1 + d + length, axis=-1)
  position = jax.lax.broadcasted_iota(jnp.int32, theta.shape, theta.ndim - 1) % n

  def qubit(j):  # the angle of qubit j of each entry's group
    a = shifted(j)
    for k in range(1, n):
      a = jnp.where(position == k, shifted(j - k), a)
    return prepare(a)

  z = backend.columns([qubit(j) for j in range(n)], None)
  out = z[0]
  for k in range(1, n):
    out = jnp.where(position == k, z[k], out)
  return out


EIGHT_HOST_DEVICES = "--xla_force_host_platform_device_count=8"
CANDIDATES = {
  "strided": grouping._padded(_strided),
  "regrouped": _regrouped,
  "rows": _rows,
  "row-shifts": _row_shifts,
  "gathered": _gathered,
}
ON_ROWS = {"rows", "row-shifts"}  # another circuit assignment: other values


@contextlib.contextmanager
def registered() -> Iterator[None]:
  """The candidates in ``grouping.GROUPINGS`` (so that ``grouping.forced`` takes them), then
  removed."""
  grouping.GROUPINGS.update(CANDIDATES)
  try:
    yield
  finally:
    for name in CANDIDATES:
      del grouping.GROUPINGS[name]


LEAF_LAYOUTS = {"last": ((8,), ("x",), P(None, "x")), "2d": ((2, 4), ("a", "b"), P("a", "b"))}


CIRCUIT = qsgd_optax.Circuit(entanglement="chain", layers=2)


@functools.cache
def leaf() -> tuple[jax.Array, jax.Array, jax.Array]:
  """The (64, 96) leaf's params and grads, and its unsharded ``columns`` update."""
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  p, g = jax.random.normal(k1, (64, 96)), jax.random.normal(k2, (64, 96))
  with grouping.forced("columns"):
    tx = qsgd_optax.superpose(0.5, CIRCUIT)
    return p, g, jax.jit(tx.update)(g, tx.init(p), p)[0]


def halos(name: str) -> tuple[dict[str, dict[str, int]], float]:
  """Collectives per layout in the sharded update of a (64, 96) leaf under ``name``, and the
  largest difference from the unsharded ``columns`` update (``nan`` for another assignment)."""
  p, g, ref = leaf()
  found, diff = {}, 0.0
  cpus = jax.devices("cpu")
  for layout, (shape, names, spec) in LEAF_LAYOUTS.items():
    s = NamedSharding(Mesh(np.array(cpus[:8]).reshape(shape), names), spec)
    ps, gs = jax.device_put(p, s), jax.device_put(g, s)
    tx = qsgd_optax.superpose(0.5, CIRCUIT)  # a fresh one: jit caches traces per function
    with grouping.forced(name):
      compiled = jax.jit(tx.update).lower(gs, tx.init(ps), ps).compile()
    text = compiled.as_text()
    found[layout] = {k: c for k, (c, _) in _xla.collectives(text).items() if c}
    diff = max(diff, float(jnp.max(jnp.abs(compiled(gs, tx.init(ps), ps)[0] - ref))))
  return found, float("nan") if name in ON_ROWS else diff


def v5e(name: str, adamw) -> dict[str, float]:
  tx = xla_train_step.optimizers()["qsgd(chain)"]
  with grouping.forced(name):
    row = xla_train_step.analyse("gpt2", tx, "1x512", _xla.device("v5e"), "float32", layers=2)
  return xla_train_step.relative(row, adamw)


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--out", help="write <out>.md and <out>.json")
  args = parser.parse_args(argv)
  # Read when jax starts its CPU backend, which nothing above has done yet.
  os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " " + EIGHT_HOST_DEVICES
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  jax.config.update("jax_platforms", "cpu")
  names = ["columns", "shifted-stored", "shifted-in-groups", *CANDIDATES]
  command, versions, md = _xla.preamble("tpu_formulations.py", argv, "Compiler analysis.")
  _xla.section(md, "qsgd(chain): a sharded (64, 96) leaf on 8 host devices; GPT-2's 2-layer "
               "train step at 1x512 on one v5e", [
    "| formulation | collectives, last axis / 2 x 4 | max diff from columns | extra kernels | "
    "extra traffic | extra temp | TPU cycles |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ])  # fmt: skip
  adamw = xla_train_step.analyse(
    "gpt2", xla_train_step.optimizers()["adamw"], "1x512", _xla.device("v5e"), "float32", 2
  )
  rows = []
  with registered():
    for name in names:
      start = time.perf_counter()
      found, diff = halos(name)
      rel = v5e(name, adamw)
      coll = " / ".join(
        ", ".join(f"{k} {c}" for k, c in f.items()) or "none" for f in found.values()
      )
      md.append(
        f"| {name} | {coll} | {diff:.1e} | {rel['kernels']:+d} | {rel['traffic_pb']:+.2f} pb | "
        f"{rel['temp_pb']:+.2f} pb | x{rel['cycles']:.3f} |"
      )
      print(md[-1] + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
      rows.append(dict(formulation=name, collectives=found, max_diff=diff, **rel))
  _xla.write(args.out, md, dict(versions=versions, command=command, rows=rows))
  return rows


if __name__ == "__main__":
  main()
