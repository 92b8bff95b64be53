"""The whole train step on this machine's device: forward, backward, update and apply.

Times the jitted train step (params and optimizer state donated) of each optimizer against the
baseline's on the same model, all candidates of one setting interleaved (``_harness.py``: a
shuffled order each round, each timed step after an untimed one, medians). Models
(``--model``):

  paper  the study's classifier (``study.models``) at the paper's size: embedding 64, 4 heads,
         FFN 128, 2 layers, batch 32; with classical attention and quantum attention
         (``--attention``: the Fourier form, and the per-score statevector simulation); under
         Adam (the baseline), ``qsgd-0.5`` and ``qsgd-0.5-update`` (the study's names)
  wide   the same at d=256, 8 heads, FFN 1024, 4 layers, batch 64 (no statevector attention)
  gpt2, llama
         the causal LMs that ``xla_train_step.py`` compiles (``_lm.py``: GPT-2 small and a
         Llama with SmolLM2-135M's shapes) at ``--batch``, ``--dtype`` and ``--layers``, under
         AdamW (the baseline) and ``qsgd`` with every circuit (``--opt``)

The table gives the median step time, its ratio to the baseline on the same setting (the
optimizer's end-to-end overhead), for quantum attention its ratio to classical attention under
the same optimizer (the layer's overhead, the paper's "35% per epoch"), XLA's temporaries of
each compiled step and the optimizer state's size.

Run:
  python benchmarks/train_step.py            # paper and wide, 30 repeats
  python benchmarks/train_step.py --quick
  python benchmarks/train_step.py --model gpt2 --batch 1x512 --dtype float32   # (a GPU's)
Writes benchmarks/results/train_step-<platform>.{json,md} (or ``--name``).
"""

import argparse
import functools
import statistics
from collections.abc import Callable

import _lm
import _xla
import jax
import jax.numpy as jnp
import optax
from _harness import RESULTS, carried, interleaved, memory, run_meta, save, tree_bytes

from qsgd_optax.grouping import GROUPINGS, forced

CLASSIFIERS = {
  "paper": dict(label="paper (d=64, 2 layers, batch 32)", model={}, batch=32),
  "wide": dict(
    label="wide (d=256, 4 layers, batch 64)",
    model=dict(d_model=256, num_heads=8, d_ff=1024, num_layers=4),
    batch=64,
  ),
}
MODELS = [*CLASSIFIERS, *_lm.MODELS]
CLASSIFIER_OPTIMIZERS = ["adam", "qsgd-0.5", "qsgd-0.5-update"]
LM_OPTIMIZERS = ["adamw", *(f"qsgd({name})" for name in _xla.CIRCUITS)]
ATTENTION = {
  "classical": ("classical", None),
  "quantum": ("quantum (Fourier)", "analytic"),
  "statevector": ("quantum (per-score statevector)", "statevector"),
}


def classifier_steps(size: str, attention: list[str], labels: list[str]) -> dict:
  """The study's classifier's steps, by (attention, optimizer)."""
  from flax import nnx

  from qsgd_optax.nn import ScoreCircuit
  from study.classification import optimizer
  from study.models import TransformerClassifier
  from study.tasks import topic_sequences

  cfg = CLASSIFIERS[size]
  x, y = topic_sequences(cfg["batch"], seed=0)
  runs = {}
  for attn in attention:
    name, backend = ATTENTION[attn]
    circuit = None if backend is None else ScoreCircuit.build(backend=backend)
    for label in labels:
      model = TransformerClassifier(96, 32, 4, circuit=circuit, rngs=nnx.Rngs(0), **cfg["model"])
      graphdef, params = nnx.split(model, nnx.Param)
      tx = optimizer(label, 1e-3)

      def loss(params, key, graphdef=graphdef):
        logits = nnx.merge(graphdef, params)(x, rngs=nnx.Rngs(dropout=key))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

      def step(params, state, key, loss=loss, tx=tx):
        grads = jax.grad(loss)(params, key)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

      runs[name, label] = _run(step, tx, params, jax.random.PRNGKey(0))
  return runs


def lm_steps(model: str, batch: str, dtype: str, layers, labels: list[str]) -> dict:
  """The causal LM's steps (``_lm.train_step``, as ``xla_train_step.py`` compiles them), by
  ("-", optimizer)."""
  cfg = _lm.config(model, layers)
  b, t = _lm.BATCHES[batch]
  key, data = jax.random.split(jax.random.key(0))
  params0 = _lm.init(cfg, t, jnp.dtype(dtype), key)
  tokens = jax.random.randint(data, (b, t + 1), 0, cfg["vocab"])
  opts = _xla.optimizers(1e-4, composed=False)
  runs = {}
  for label in labels:
    params = jax.tree.map(jnp.copy, params0)  # each step donates its own
    runs["-", label] = _run(_lm.train_step(cfg, opts[label]), opts[label], params, tokens)
  return runs


def _run(step, tx, params, batch) -> dict:
  """A candidate: ``step(params, state, batch)`` jitted with params and state donated,
  compiled and run once, with its size, temporaries and optimizer state."""
  step = jax.jit(step, donate_argnums=(0, 1))
  state = tx.init(params)
  temp = memory(step.lower(params, state, batch).compile()).get("temp")
  params, state = step(params, state, batch)[:2]
  jax.block_until_ready(params)
  return dict(
    advance=carried(step, params, state, batch),
    n_params=int(sum(p.size for p in jax.tree.leaves(params))),
    temp_bytes=temp,
    state_bytes=tree_bytes(state),
  )


def settings(args, parser) -> list[tuple[dict, list[str], Callable[[], dict]]]:
  """Each setting of the command line: its keys (model, batch, dtype, layers, and the title
  of its rows), its optimizers (the baseline first) and a function building its candidates."""
  out = []
  for model in args.model or ["paper", "wide"]:
    if model in CLASSIFIERS:
      cfg = CLASSIFIERS[model]
      labels = _labels(args, parser, CLASSIFIER_OPTIMIZERS)
      attention = [
        a
        for a in args.attention or list(ATTENTION)
        if not (a == "statevector" and (args.no_statevector or model == "wide"))
      ]
      where = dict(model=model, batch=cfg["batch"], dtype="float32", setting=cfg["label"])
      build = functools.partial(classifier_steps, model, attention, labels)
      out.append((where, labels, build))
      continue
    labels = _labels(args, parser, LM_OPTIMIZERS)
    for batch in args.batch or list(_lm.MEASURED_BATCHES):
      for dtype in args.dtype or _xla.DTYPES:
        title = f"{model}, {batch}, {dtype}" + (f", {args.layers} layers" if args.layers else "")
        where = dict(model=model, batch=batch, dtype=dtype, layers=args.layers, setting=title)
        build = functools.partial(lm_steps, model, batch, dtype, args.layers, labels)
        out.append((where, labels, build))
  return out


def _labels(args, parser, known) -> list[str]:
  """The optimizers of ``--opt`` that a model's family knows, its baseline first."""
  if args.opt and (unknown := set(args.opt) - {*CLASSIFIER_OPTIMIZERS, *LM_OPTIMIZERS}):
    parser.error(f"unknown --opt {sorted(unknown)}")
  return [known[0], *[o for o in args.opt or known if o in known and o != known[0]]]


def markdown(rows, meta) -> str:
  mib = lambda b: "" if b is None else f"{b / 2**20:.1f}"
  lines = [
    f"Device: {meta['device']}; jax {meta['jax']}; {meta['date']}; "
    f"{meta['repeats']} interleaved repeats, median.",
    "",
    "| model | attention | optimizer | params | step ms | vs baseline | vs classical "
    "| temp MiB | state MiB |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    classical = "" if r["ratio_to_classical"] is None else f"{r['ratio_to_classical']:.2f}"
    lines.append(
      f"| {r['setting']} | {r['attention']} | {r['optimizer']} | {r['n_params']:,} | "
      f"{r['median_ms']:.2f} | {r['ratio_to_baseline']:.3f} | {classical} | "
      f"{mib(r['temp_bytes'])} | {mib(r['state_bytes'])} |"
    )
  return "\n".join(lines)


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--model", action="append", choices=MODELS, help="default: paper, wide")
  parser.add_argument("--attention", action="append", choices=list(ATTENTION), help="classifiers")
  parser.add_argument(
    "--no-statevector", action="store_true", help="skip the (slow) per-score statevector attention"
  )
  parser.add_argument("--batch", action="append", choices=list(_lm.BATCHES), help="LMs")
  parser.add_argument("--dtype", action="append", choices=_xla.DTYPES, help="LMs")
  parser.add_argument("--layers", type=int, help="LMs: override the depth")
  parser.add_argument("--opt", action="append", help="an optimizer's label (default: all)")
  parser.add_argument("--grouping", choices=sorted(GROUPINGS), help="force a formulation")
  parser.add_argument("--repeats", type=int, default=30, help="timed steps per optimizer")
  parser.add_argument("--quick", action="store_true", help="5 repeats")
  parser.add_argument("--out", default=RESULTS)
  parser.add_argument("--name", help="result file name (default train_step-<platform>)")
  args = parser.parse_args(argv)
  repeats = 5 if args.quick else args.repeats
  rows = []
  with forced(args.grouping):  # Every step is traced inside.
    for where, labels, build in settings(args, parser):
      runs = build()
      times = interleaved({k: run["advance"] for k, run in runs.items()}, repeats)
      med = {k: statistics.median(ts) for k, ts in times.items()}
      classical = ATTENTION["classical"][0]
      for (attn, opt), run in runs.items():
        by_classical = med[attn, opt] / med[classical, opt] if (classical, opt) in med else None
        rows.append(
          where
          | dict(
            attention=attn,
            optimizer=opt,
            n_params=run["n_params"],
            median_ms=med[attn, opt] * 1e3,
            ratio_to_baseline=med[attn, opt] / med[attn, labels[0]],
            ratio_to_classical=by_classical,
            temp_bytes=run["temp_bytes"],
            state_bytes=run["state_bytes"],
            times_s=times[attn, opt],
          )
        )
        print({k: v for k, v in rows[-1].items() if k != "times_s"}, flush=True)
  meta = run_meta(repeats=repeats, grouping=args.grouping)
  name = args.name or f"train_step-{jax.devices()[0].platform}"
  save(args.out, name, dict(meta=meta, rows=rows), markdown(rows, meta))
  return rows


if __name__ == "__main__":
  main()
