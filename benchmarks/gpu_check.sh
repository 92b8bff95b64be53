#!/usr/bin/env bash
# Issue 17's device checks in one call (the test suite, the overhead tables on
# three layouts, the HLO of one step, the quantum-attention train step), for a
# session that is lent a GPU. Prepared and dry-run on the CPU (GPU_CHECK_QUICK=1);
# about 9 minutes on one H100/H200 by estimate, not yet run there.
#
# The device image has jax, optax, flax, pytest(-xdist) and hypothesis but not
# PennyLane, the reference of several tests; carry its wheels (Python 3.12,
# about 41 MB into .whl/, which .gitignore ignores), fetched here first with
#   bash benchmarks/gpu_check.sh wheels
# then, with the device tool:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
# Everything lands under $OUT (8 files at most come back): pytest.log,
# pytest-summary.md (device, then passed/failed/skipped per file), the tables
# overhead-gpu.md, hlo-gpu.md, fused-gpu.md, train_step-gpu.md, and their raw
# numbers in results-json.tgz (copy them into benchmarks/results/).
set -uo pipefail
if [ "${1:-}" = wheels ]; then  # PennyLane and what the image lacks of its needs
  for spec in pennylane==0.45.1 pennylane-lightning==0.45.0 scipy-openblas32 autograd appdirs \
    autoray cachetools diastatic-malt termcolor gast rustworkx tomlkit; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$spec" || exit
  done
  du -sh .whl
  exit
fi
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # the checkout, not installed there
if [ -n "${GPU_CHECK_QUICK:-}" ]; then  # a dry run of this script, on any machine
  tests=(tests/test_circuit.py tests/test_precision.py) workers=2 sizes=(1e5) bf16=1e5 repeats=2
else
  tests=() workers=8 sizes=(5e7 2e8) bf16=5e7 repeats=7
fi

{
  echo "# Device checks, $(date -u +%F)"
  echo
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
} >"$out/device.txt" 2>&1

step() { echo "== $1 ($SECONDS s)"; }
step "tests"
timeout 220 python3 -m pytest "${tests[@]}" -n "$workers" -v -rs -p no:cacheprovider \
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

step "overhead, three layouts"
timeout 170 python3 benchmarks/overhead.py --sizes "${sizes[@]}" --bf16-size "$bf16" \
  --repeats "$repeats" --out "$out" --name overhead-gpu | tail -4
step "HLO of one step"
timeout 40 python3 benchmarks/hlo_fusions.py --out "$out" | tail -9
step "train step"
timeout 80 python3 benchmarks/train_step.py --quick --no-statevector --out "$out" | tail -4
step "one-pass formulations"
timeout 50 python3 benchmarks/fused.py --size "${sizes[0]}" --repeats "$repeats" --out "$out" | tail -4
step "done"
(cd "$out" && tar czf results-json.tgz ./*.json && rm ./*.json)
ls "$out"
