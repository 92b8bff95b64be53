"""A LoRA fine-tune in Tunix's ``PeftTrainer`` with ``inject_hyperparams(qsgd)`` on a schedule.

A tiny Llama 3 (Tunix's own model code, random weights, nothing downloaded) gets LoRA adapters
from qwix; the trainer updates only those, checkpoints them with the optimizer state (Orbax),
and a second trainer on the same directory resumes from the last checkpoint. Tunix's YAML/CLI
route looks the optimizer up by name in optax (``getattr(optax, name)``, tunix/cli/config.py),
so it cannot name ``qsgd``: build the optimizer in Python, as here.

Run: pip install -e '.[tunix]' && python examples/tunix_finetune.py
"""

import os
import tempfile

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import qwix
from flax import nnx
from tunix.models.llama3 import model as llama3
from tunix.sft import peft_trainer, utils

import qsgd_optax

CONFIG = llama3.ModelConfig(
  num_layers=2,
  vocab_size=64,
  embed_dim=64,
  hidden_dim=128,
  num_heads=4,
  head_dim=16,
  num_kv_heads=2,
  rope_theta=10_000,
  norm_eps=1e-5,
)
FIRST, TOTAL = 20, 30  # Train steps before the resume, and in all.
SCHEDULE = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 5, TOTAL, end_value=1e-3)


def lora_model():
  """Llama 3 with random float32 weights and rank-8 LoRA on its attention projections."""
  model = llama3.Llama3(CONFIG, rngs=nnx.Rngs(0))
  # Not on the MLP: Llama3 starts its MLP kernels at zero (loaded weights replace them), where
  # LoRA's gradients are zero too.
  lora = qwix.LoraProvider(module_path=".*attn/(q|k|v|o)_proj", rank=8, alpha=16.0)
  return qwix.apply_lora_to_model(model, lora, rngs=nnx.Rngs(1), **model.get_model_input())


def batches():
  """Next-token data: 8 sequences per batch, counting up modulo 16 from random starts."""
  rng = np.random.default_rng(0)
  for _ in range(TOTAL):
    tokens = (rng.integers(0, 16, (8, 1)) + np.arange(32)) % 16 + 1
    yield {"input_tokens": tokens.astype(np.int32), "input_mask": np.ones_like(tokens, bool)}


def model_inputs(x):
  """The arguments of Tunix's default loss, built as tunix/cli/peft_main.py builds them."""
  return {
    "input_tokens": x["input_tokens"],
    "input_mask": x["input_mask"],
    "positions": utils.build_positions_from_mask(x["input_mask"]),
    "attention_mask": utils.make_causal_attn_mask(x["input_mask"]),
  }


def trainer(checkpoints, max_steps):
  optimizer = optax.inject_hyperparams(qsgd_optax.qsgd)(
    learning_rate=SCHEDULE,
    quantum_weight=0.5,
    circuit=qsgd_optax.Circuit(entanglement="chain", layers=2),  # The paper's circuit.
  )
  config = peft_trainer.TrainingConfig(
    eval_every_n_steps=10,
    max_steps=max_steps,
    checkpoint_root_directory=checkpoints,
    checkpointing_options=ocp.CheckpointManagerOptions(save_interval_steps=10, max_to_keep=2),
  )
  # With LoRA in the model, PeftTrainer optimizes only the nnx.LoRAParam leaves.
  return peft_trainer.PeftTrainer(lora_model(), optimizer, config).with_gen_model_input_fn(
    model_inputs
  )


def train(t):
  start = t.train_steps
  t.train(batches())  # A resumed trainer skips the batches it has already trained on.
  losses = t.metrics_logger.get_metric_history("", "loss", "train")
  for step, loss in zip(range(start + 1, t.train_steps + 1), losses):
    if step % 5 == 0 or step == start + 1:  # Step 1 is the schedule's count 0.
      print(f"step {step:3d}  loss {float(loss):.4f}  learning rate {SCHEDULE(step - 1):.2e}")


def main():
  with tempfile.TemporaryDirectory() as checkpoints:
    first = trainer(checkpoints, FIRST)
    n = sum(x.size for x in jax.tree.leaves(nnx.state(first.model, nnx.LoRAParam)))
    print(f"training {n} LoRA parameters with qsgd")
    train(first)
    print(f"checkpoints at steps {sorted(int(s) for s in os.listdir(checkpoints) if s.isdigit())}")

    second = trainer(checkpoints, TOTAL)  # Restores the latest checkpoint when built.
    count = second.optimizer.opt_state.count[...]  # inject_hyperparams' step count, restored.
    print(f"resumed from step {second.train_steps}, schedule count {int(count)}")
    train(second)
    # What inject_hyperparams recorded: the learning rate of the last step, from the schedule.
    lr = second.optimizer.opt_state.hyperparams["learning_rate"][...]
    print(f"learning rate in the optimizer state: {float(lr):.2e} at step {second.train_steps}")


if __name__ == "__main__":
  main()
