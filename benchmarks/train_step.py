"""End-to-end cost: a full training step (forward, backward, update).

Times the jitted training step of the paper's sequence classifier (embedding
64, 4 heads, FFN 128, 2 layers, batch 32) and of a wider one, with classical
and quantum attention, under Adam and ``qsgd`` (both placements). All
candidates of one model run interleaved in one process (in a shuffled order
each round, each timed step preceded by an untimed one); the
table gives the median step time, its ratio to Adam on the same model (the
optimizer's end-to-end overhead) and, for quantum attention, its ratio to
classical attention under the same optimizer (the layer's overhead, the
paper's "35% per epoch"), plus XLA's temporary memory of each compiled step.

Run:
  python benchmarks/train_step.py            # both sizes, 30 repeats
  python benchmarks/train_step.py --quick
Writes benchmarks/results/train_step-<platform>.{json,md}.
"""

import argparse
import os
import statistics
import time

import jax
import optax
from _results import save
from _timing import interleaved
from flax import nnx

from qsgd_optax._src.attention import ScoreCircuit
from qsgd_optax._src.transformer import TransformerClassifier
from study import optimizer
from study.tasks import topic_sequences

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {
  "paper (d=64, 2 layers, batch 32)": dict(model={}, batch=32),
  "wide (d=256, 4 layers, batch 64)": dict(
    model=dict(d_model=256, num_heads=8, d_ff=1024, num_layers=4), batch=64
  ),
}
OPTIMIZERS = ("adam", "qsgd-0.5", "qsgd-0.5-update")
ATTENTION = {
  "classical": None,
  "quantum (Fourier)": "analytic",
  "quantum (per-score statevector)": "statevector",
}


def make_step(model_kw, circuit, opt_name, batch):
  x, y = topic_sequences(batch, seed=0)
  model = TransformerClassifier(96, 32, 4, circuit=circuit, rngs=nnx.Rngs(0), **model_kw)
  graphdef, params = nnx.split(model, nnx.Param)
  tx = optimizer(opt_name, 1e-3)

  def loss_fn(params, key):
    logits = nnx.merge(graphdef, params)(x, rngs=nnx.Rngs(dropout=key))
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def step(params, opt_state, key):
    grads = jax.grad(loss_fn)(params, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  step = jax.jit(step, donate_argnums=(0, 1))
  opt_state = tx.init(params)
  key = jax.random.PRNGKey(0)
  mem = step.lower(params, opt_state, key).compile().memory_analysis()
  params, opt_state = step(params, opt_state, key)
  jax.block_until_ready(params)
  n = sum(p.size for p in jax.tree.leaves(params))
  return dict(
    step=step,
    carry=(params, opt_state),
    key=key,
    n_params=int(n),
    temp_bytes=getattr(mem, "temp_size_in_bytes", None),
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--repeats", type=int, default=30)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument(
    "--no-statevector", action="store_true", help="skip the (slow) per-score statevector attention"
  )
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  repeats = 5 if args.quick else args.repeats
  os.makedirs(args.out, exist_ok=True)
  rows = []
  for size, cfg in SIZES.items():
    runs = {}
    for attn, backend in ATTENTION.items():
      if backend == "statevector" and (args.no_statevector or "wide" in size):
        continue
      circuit = None if backend is None else ScoreCircuit.build(backend=backend)
      for opt in OPTIMIZERS:
        runs[(attn, opt)] = make_step(cfg["model"], circuit, opt, cfg["batch"])

    def advance(run):
      run["carry"] = run["step"](*run["carry"], run["key"])
      return run["carry"][0]

    times = interleaved({k: (lambda run=run: advance(run)) for k, run in runs.items()}, repeats)
    for k, run in runs.items():
      run["times"] = times[k]
    med = {k: statistics.median(r["times"]) for k, r in runs.items()}
    for (attn, opt), run in runs.items():
      rows.append(
        dict(
          size=size,
          attention=attn,
          optimizer=opt,
          n_params=run["n_params"],
          median_ms=med[(attn, opt)] * 1e3,
          ratio_to_adam=med[(attn, opt)] / med[(attn, "adam")],
          ratio_to_classical=med[(attn, opt)] / med[("classical", opt)],
          temp_mib=None if run["temp_bytes"] is None else run["temp_bytes"] / 2**20,
        )
      )
      print(rows[-1], flush=True)
  device = jax.devices()[0]
  meta = dict(
    device=f"{device.platform} {getattr(device, 'device_kind', '')} ({os.cpu_count()} cores)",
    jax=jax.__version__,
    date=time.strftime("%Y-%m-%d"),
    repeats=repeats,
  )
  lines = [
    f"Device: {meta['device']}; jax {meta['jax']}; {meta['date']}; "
    f"{repeats} interleaved repeats, median.",
    "",
    "| model | attention | optimizer | params | step ms | vs adam | vs classical | temp MiB |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    temp = "" if r["temp_mib"] is None else f"{r['temp_mib']:.1f}"
    lines.append(
      f"| {r['size']} | {r['attention']} | {r['optimizer']} | "
      f"{r['n_params']:,} | {r['median_ms']:.2f} | "
      f"{r['ratio_to_adam']:.3f} | {r['ratio_to_classical']:.2f} | {temp} |"
    )
  name = f"train_step-{device.platform}"
  save(args.out, name, dict(meta=meta, rows=rows), "\n".join(lines))


if __name__ == "__main__":
  main()
