#!/usr/bin/env bash
# The GPU checks in one run of at most 8 minutes, each part printed as it
# finishes:
#   1. the test suite (-n 8, about 155 s on an H200 on 2026-11-30),
#   2. what XLA's compiler makes of one step for an H200 (xla_step.py: kernels,
#      traffic, temporaries) and the grouping formulations (grouping.py:
#      fusions, temporaries, time against adamw),
#   3. overhead.py's target rows: tree and flat leaf, 50M and 200M float32,
#      50M bfloat16, for qsgd and chain(superpose, adamw), default / chain /
#      ring / paper's circuit,
#   4. the whole train step of GPT-2 small at batch 1x512, float32 (forward,
#      backward, update, apply, donated; benchmarks/train_step.py --model gpt2):
#      AdamW and qsgd with every circuit, interleaved, medians.
# GPU_CHECK_QUICK=1 runs a small version of every part, on any machine (the
# CPU included).
#
# It needs jax, optax, flax, pytest(-xdist) and hypothesis; PennyLane's tests
# skip where it is not installed. Run from the repository's root:
#   bash tools/gpu_check.sh      # on the GPU machine, about 8 minutes
# Everything lands under $OUT: pytest.log, pytest-summary.md, xla_step-h200.md,
# grouping-gpu.md, overhead-gpu.md, train_step-gpu-gpt2.md, and the raw
# numbers in results-json.tgz
# (copy them into benchmarks/results/ under the names of its README.md, with the
# version, e.g. overhead-gpu-0.4-run1, beside the older overhead-gpu).
set -uo pipefail
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # the checkout, not installed there
if [ -n "${GPU_CHECK_QUICK:-}" ]; then  # a dry run of this script, on any machine
  tests=(tests/test_circuit.py tests/test_one_loop.py) workers=2 sizes=(1e5) bf16=1e5 repeats=2
  rows=64 layers=(--layers 1)
else
  tests=() workers=8 sizes=(5e7 2e8) bf16=5e7 repeats=5 rows=12288 layers=()
fi

{
  echo "# Device checks, $(date -u +%F)"
  echo
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
} >"$out/device.txt" 2>&1

step() { echo "== $1 ($SECONDS s)"; }
step "tests"
timeout 170 python3 -m pytest "${tests[@]}" -n "$workers" -v -rs -p no:cacheprovider \
  >"$out/pytest.log" 2>&1
echo "pytest exit $?"
tail -3 "$out/pytest.log"
python3 - "$out" <<'PY'
import collections, re, sys
out = sys.argv[1]
counts = collections.defaultdict(collections.Counter)
for line in open(f"{out}/pytest.log"):
  m = re.search(r"(PASSED|FAILED|SKIPPED|ERROR|XFAIL)\s+(\S+?)::", line) or re.search(
    r"(\S+?)::\S*\s+(PASSED|FAILED|SKIPPED|ERROR|XFAIL)", line)
  if m:
    a, b = m.groups()
    status, path = (a, b) if a.isupper() else (b, a)
    counts[path.split("::")[0]][status.lower()] += 1
lines = [open(f"{out}/device.txt").read(), "", "| file | passed | failed | skipped | error |",
         "| --- | --- | --- | --- | --- |"]
for path in sorted(counts):
  c = counts[path]
  lines.append(f"| {path} | {c['passed']} | {c['failed']} | {c['skipped']} | {c['error']} |")
summary = [l for l in open(f"{out}/pytest.log") if re.match(r"=+ .*(passed|failed).* =+$", l)]
lines += ["", *(s.strip() for s in summary[-1:])]
open(f"{out}/pytest-summary.md", "w").write("\n".join(lines) + "\n")
PY
rm -f "$out/device.txt"

step "HLO of one step"
timeout 60 python3 benchmarks/xla_step.py --target h200 --tree 4096x12288 --dtype float32 \
  --out "$out/xla_step-h200" | tail -14
step "grouping formulations"
timeout 60 python3 benchmarks/grouping.py --rows "$rows" --repeats "$repeats" --out "$out" \
  | grep -v "^(" | tail -40
step "overhead, target rows"
timeout 100 python3 benchmarks/overhead.py --sizes "${sizes[@]}" --bf16-size "$bf16" \
  --repeats "$repeats" --layouts tree flat --out "$out" --name overhead-gpu \
  --only adamw qsgd "superpose+adamw" "qsgd(chain)" "superpose(chain)+adamw" "qsgd(ring)" \
  "superpose(ring)+adamw" "qsgd(chain, layers=2)" "superpose(chain, layers=2)+adamw" | tail -4
step "whole train step, GPT-2 small, 1x512"
timeout 120 python3 benchmarks/train_step.py --model gpt2 --batch 1x512 --dtype float32 \
  "${layers[@]}" --repeats "$((4 * repeats))" --out "$out" --name train_step-gpu-gpt2 | tail -8
step "done"
(cd "$out" && tar czf results-json.tgz ./*.json && rm ./*.json)
ls "$out"
