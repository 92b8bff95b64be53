"""What every benchmark shares: how it measures, and how it hands in its results.

Every candidate is a callable that runs one more step of its own (carrying its
params and state) and returns what to wait for. :func:`interleaved` runs all
candidates in a shuffled order each round, each timed step after an untimed
one, so machine noise and cache state hit all alike.

Results go to ``<out>/<name>.json`` (the raw numbers) and ``<out>/<name>.md``
(the table quoted in the docs), the table also printed (``save``, the study's writer).

The scripts run as ``python benchmarks/<script>.py``; importing this module
(every script does, before ``qsgd_optax``) puts the repository's root on
``sys.path``, so that they import the checkout's package where none is
installed, and the study (``study/``), which is never installed.
"""

import os
import random
import sys
import time
from collections.abc import Callable

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
if ROOT not in sys.path:
  sys.path.append(ROOT)  # an installed qsgd_optax comes first

from study._results import save  # noqa: E402, F401  (one writer of results, the study's too)


def tree_bytes(tree) -> int:
  """Bytes of every array leaf of ``tree``."""
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def memory(compiled) -> dict:
  """XLA's memory analysis of a compiled function, in bytes per kind."""
  mem = compiled.memory_analysis()
  fields = ("temp", "argument", "output", "alias", "generated_code")
  return {f: getattr(mem, f"{f}_size_in_bytes", None) for f in fields} if mem else {}


def carried(step, params, state, *args) -> Callable[[], object]:
  """A candidate for :func:`interleaved`: each call runs ``step(params, state, *args)``
  once more on the params and state it carries (donated by ``step``), returns them."""
  carry = [params, state]

  def advance():
    carry[0], carry[1] = step(carry[0], carry[1], *args)[:2]
    return carry[0]

  return advance


def interleaved(
  candidates: dict[str, Callable[[], object]],
  repeats: int,
  seed: int = 0,
  on_round: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
  """Seconds of ``repeats`` timed steps per candidate (see the module doc)."""
  times: dict[str, list[float]] = {name: [] for name in candidates}
  rng = random.Random(seed)
  for r in range(repeats):
    order = list(candidates.items())
    rng.shuffle(order)  # No candidate always follows the same neighbour.
    for name, advance in order:
      # An untimed step first: time the steady state, not the caches another
      # candidate just left cold.
      jax.block_until_ready(advance())
      start = time.perf_counter()
      jax.block_until_ready(advance())
      times[name].append(time.perf_counter() - start)
    if on_round is not None:
      on_round(r)
  return times


def run_meta(**extra) -> dict:
  """What every result records: the device, jax's version and the date."""
  import platform

  device = jax.devices()[0]
  return dict(
    device=f"{device.platform}: {getattr(device, 'device_kind', '')} "
    f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    **extra,
  )
