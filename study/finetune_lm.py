"""The nearest honest CPU analogue of the paper's LLM fine-tuning (GSM8K).

1. Pre-train a small byte-level causal transformer (Flax NNX) with AdamW on
   text that exists on every machine: the Python standard library's source.
2. Fine-tune copies of it, one epoch at batch 1 as in the paper (warm-up then
   linear decay to 0, gradient clipping 1.0, weight decay 0.01), on
   GSM8K-style word problems with worked answers generated in code
   (:func:`study.tasks.arithmetic_problems`), with AdamW (the paper's
   baseline), ``qsgd`` at lambda in {0.1, 0.5, 1.0}, the direction placement at
   0.5 and the noise floor (AdamW on gradients times ``1 + 1e-6 u``), over
   several seeds.
3. Report the paper's metric (mean training loss over fine-tuning), the final
   held-out loss, and answer accuracy (greedy decoding, exact final number)
   on held-out problems, with a paired comparison against AdamW.

The paper's learning rate (2e-5) is for a pre-trained LLM; this 0.8M-parameter
model needs a larger one (default 1e-3, same for every optimizer).

Run from the repository's root:
  python -m study.finetune_lm            # 3 seeds
  python -m study.finetune_lm --quick
Writes study/results/finetune_lm-<platform>.{json,md,png}.
"""

import argparse
import glob
import os
import platform
import time
from collections.abc import Sequence
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from qsgd_optax.nn import CausalLM
from study._results import RESULTS, save
from study.classification import optimizer
from study.tasks import arithmetic_problems

LEN = 96
OPTIMIZERS = ["adamw", "floor", "qsgd-0.1", "qsgd-0.5", "qsgd-1.0", "qsgd-0.5-direction"]


def stdlib_corpus(n_chars: int) -> np.ndarray:
  files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))
  parts = []
  for f in files:
    with open(f, encoding="utf-8", errors="ignore") as fh:
      parts.append(fh.read())
  text = "".join(parts)
  return np.frombuffer(text[:n_chars].encode("ascii", "ignore"), np.uint8)


def encode(s: str) -> np.ndarray:
  return np.frombuffer(s.encode("ascii"), np.uint8)


def problem_batch(problems: Sequence[tuple[str, str, Any]]) -> tuple[np.ndarray, np.ndarray]:
  """Tokens [n, LEN] (0-padded) and a loss mask over real next-tokens."""
  x = np.zeros((len(problems), LEN), np.int32)
  for i, (q, a, _) in enumerate(problems):
    t = encode(f"Q: {q}\nA: {a}\n")[:LEN]
    x[i, : t.size] = t
  return x, (x[:, 1:] != 0).astype(np.float32)


def lm_loss(model: CausalLM, x: Any, mask: Any) -> jax.Array:
  """Mean next-token cross-entropy of the tokens ``x`` where ``mask`` is 1."""
  logits = model(x[:, :-1], deterministic=True)
  nll = optax.softmax_cross_entropy_with_integer_labels(logits, x[:, 1:])
  return (nll * mask).sum() / mask.sum()


def pretrain(steps: int, seed: int = 0) -> tuple[Any, Any, float]:
  data = stdlib_corpus(400_000)
  model = CausalLM(256, LEN, d_model=128, num_heads=4, d_ff=512, num_layers=3, rngs=nnx.Rngs(seed))
  graphdef, params = nnx.split(model, nnx.Param)
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0, 2e-3, 50, steps))
  state = tx.init(params)

  @jax.jit
  def step(params: Any, state: Any, key: jax.Array) -> tuple[Any, Any, jax.Array]:
    starts = jax.random.randint(key, (32,), 0, data.size - LEN)
    x = jax.vmap(lambda s: jax.lax.dynamic_slice(jnp.asarray(data), (s,), (LEN,)))(starts)
    x = x.astype(jnp.int32)
    loss, grads = jax.value_and_grad(
      lambda p: lm_loss(nnx.merge(graphdef, p), x, jnp.ones((32, LEN - 1)))
    )(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  for i in tqdm(range(steps), desc="pre-train"):
    params, state, loss = step(params, state, jax.random.PRNGKey(i))
  return graphdef, params, float(loss)


def make_tx(
  name: str, lr: float, steps: int, warmup: int, seed: int = 0
) -> optax.GradientTransformation:
  schedule = optax.join_schedules(
    [optax.linear_schedule(0.0, lr, warmup), optax.linear_schedule(lr, 0.0, steps - warmup)],
    [warmup],
  )
  inner = optimizer(name, schedule, weight_decay=0.01, seed=seed)
  return optax.chain(optax.clip_by_global_norm(1.0), inner)


def finetune(
  graphdef: Any,
  params: Any,
  name: str,
  seed: int,
  train: Sequence[tuple[str, str, Any]],
  test: Sequence[tuple[str, str, Any]],
  lr: float,
  warmup: int,
) -> dict[str, Any]:
  x, mask = (jnp.asarray(a) for a in problem_batch(train))
  order = np.random.default_rng(seed).permutation(len(train))
  tx = make_tx(name, lr, len(train), min(warmup, len(train) // 4), seed)
  state = tx.init(params)

  @jax.jit
  def epoch(params: Any, state: Any) -> tuple[Any, jax.Array]:
    def step(carry: tuple[Any, Any], i: jax.Array) -> tuple[tuple[Any, Any], jax.Array]:
      params, state = carry
      loss, grads = jax.value_and_grad(
        lambda p: lm_loss(nnx.merge(graphdef, p), x[i][None], mask[i][None])
      )(params)
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), loss

    (params, state), losses = jax.lax.scan(step, (params, state), jnp.asarray(order))
    return params, losses

  start = time.perf_counter()
  params, losses = epoch(params, state)
  losses = np.asarray(losses)
  seconds = time.perf_counter() - start
  xt, mt = problem_batch(test)
  held_out = float(jax.jit(lambda p: lm_loss(nnx.merge(graphdef, p), xt, mt))(params))
  return dict(
    optimizer=name,
    seed=seed,
    mean_train_loss=float(losses.mean()),
    train_loss_curve=[float(v) for v in np.convolve(losses, np.ones(50) / 50, "valid")[::25]],
    held_out_loss=held_out,
    answer_accuracy=answer_accuracy(graphdef, params, test),
    seconds=seconds,
  )


def answer_accuracy(
  graphdef: Any, params: Any, problems: Sequence[tuple[str, str, Any]], max_new: int = 40
) -> float:
  """Greedy decoding after 'A:'; correct if the text after '####' is the answer."""
  prompts = [encode(f"Q: {q}\nA: ") for q, _, _ in problems]
  x = np.zeros((len(problems), LEN), np.int32)
  for i, p in enumerate(prompts):
    x[i, : p.size] = p
  lengths = np.array([p.size for p in prompts])

  @jax.jit
  def decode(x: jax.Array) -> jax.Array:
    def body(i: jax.Array, x: jax.Array) -> jax.Array:
      logits = nnx.merge(graphdef, params)(x, deterministic=True)
      pos = jnp.minimum(lengths + i, LEN - 1)
      nxt = jnp.argmax(logits[jnp.arange(x.shape[0]), pos - 1], -1)
      return x.at[jnp.arange(x.shape[0]), pos].set(nxt.astype(x.dtype))

    return jax.lax.fori_loop(0, max_new, body, x)

  out = np.asarray(decode(jnp.asarray(x)))
  correct = 0
  for row, n, (_, _, value) in zip(out, lengths, problems):
    text = bytes(row[n:].astype(np.uint8)).split(b"\n")[0].decode("ascii", "ignore")
    correct += text.split("####")[-1].strip() == str(value) and "####" in text
  return correct / len(problems)


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
  """The command line (see the module doc); returns the summary rows."""
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--pretrain-steps", type=int, default=600)
  parser.add_argument("--train", type=int, default=2000)
  parser.add_argument("--test", type=int, default=300)
  parser.add_argument("--lr", type=float, default=1e-3)
  parser.add_argument("--warmup", type=int, default=500)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=RESULTS)
  args = parser.parse_args(argv)
  if args.quick:
    args.seeds, args.pretrain_steps, args.train, args.test = 2, 100, 300, 100
  os.makedirs(args.out, exist_ok=True)
  graphdef, params, pre_loss = pretrain(args.pretrain_steps)
  test = arithmetic_problems(args.test, seed=10_000)
  runs = []
  for seed in range(args.seeds):
    train = arithmetic_problems(args.train, seed=seed)
    for name in tqdm(OPTIMIZERS, desc=f"fine-tune seed {seed}"):
      runs.append(finetune(graphdef, params, name, seed, train, test, args.lr, args.warmup))
  summary: list[dict[str, Any]] = []
  base = {r["seed"]: r for r in runs if r["optimizer"] == "adamw"}
  for name in OPTIMIZERS:
    rs = [r for r in runs if r["optimizer"] == name]
    row: dict[str, Any] = dict(optimizer=name, seeds=len(rs))
    for m in ("mean_train_loss", "held_out_loss", "answer_accuracy", "seconds"):
      v = np.array([r[m] for r in rs])
      row[m] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    if name != "adamw":
      d = np.array([r["mean_train_loss"] - base[r["seed"]]["mean_train_loss"] for r in rs])
      row["train_loss_diff_vs_adamw"] = float(d.mean())
      row["lower_train_loss_wins"] = f"{int((d < 0).sum())}/{len(d)}"
    summary.append(row)
  lines = [
    f"{platform.machine()}, {os.cpu_count()} cores; jax {jax.__version__}; "
    f"{time.strftime('%Y-%m-%d')}; pre-train loss {pre_loss:.3f} after "
    f"{args.pretrain_steps} steps; {args.train} fine-tuning problems, "
    f"{args.test} held out; {args.seeds} seeds.",
    "",
    "| optimizer | mean train loss (paper's metric) | diff vs adamw (lower in) | "
    "held-out loss | answer accuracy | s/epoch |",
    "| --- | --- | --- | --- | --- | --- |",
  ]
  for r in summary:
    f = lambda k, s=1, r=r: f"{s * r[k][0]:.4f} +- {s * r[k][1]:.4f}"
    diff = (
      f"{r['train_loss_diff_vs_adamw']:+.4f} ({r['lower_train_loss_wins']})"
      if "train_loss_diff_vs_adamw" in r
      else ""
    )
    lines.append(
      f"| {r['optimizer']} | {f('mean_train_loss')} | {diff} | "
      f"{f('held_out_loss')} | {100 * r['answer_accuracy'][0]:.1f}% +- "
      f"{100 * r['answer_accuracy'][1]:.1f} | {r['seconds'][0]:.1f} |"
    )
  md = "\n".join(lines)
  data = dict(args=vars(args), pretrain_loss=pre_loss, summary=summary, runs=runs)
  stem = f"finetune_lm-{jax.devices()[0].platform}"
  save(args.out, stem, data, md, indent=None)
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, ax = plt.subplots(figsize=(7, 4))
  for name in OPTIMIZERS:
    curves = np.array([r["train_loss_curve"] for r in runs if r["optimizer"] == name])
    x = np.arange(curves.shape[1]) * 25 + 50
    ax.plot(x, curves.mean(0), label=name, ls="--" if name == "adamw" else "-")
    ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.15)
  ax.set_xlabel("fine-tuning step (batch 1)")
  ax.set_ylabel("training loss (50-step moving mean)")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, stem + ".png"), dpi=110)
  return summary


if __name__ == "__main__":
  main()
