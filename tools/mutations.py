"""Deliberate bugs, each applied to a copy of the package, and the test that catches it.

Each mutant replaces one snippet of the package (it must occur exactly once)
in a fresh copy of the working tree, then runs the named test files there
(``pytest -x``, the README's own tests): a mutant is *caught* when a test
fails, and the first failing test is recorded. A survivor means a missing
test. The table goes to ``tools/results/mutations-<platform>.{md,json}``
(the platform jax runs the tests on) and, by hand, to ``docs/reliability.md``.

Run from the repository's root:
  python tools/mutations.py               # every mutant (about 10 minutes, 2 cores)
  python tools/mutations.py --only pauli-cnot-sign
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Mutant(NamedTuple):
  name: str
  area: str
  path: str
  old: str
  new: str
  tests: tuple[str, ...]


MUTANTS = [
  Mutant(
    "factor-halved",
    "modulation",
    "qsgd_optax/_src/modulation.py",
    "equation = lambda x, lam_m: x * (1 + lam_m)",
    "equation = lambda x, lam_m: x * (1 + 0.5 * lam_m)",
    ("tests/test_superpose.py",),
  ),
  Mutant(
    "modulation-sign",
    "modulation",
    "qsgd_optax/_src/modulation.py",
    "  m = -expectations(circuit, theta, key, dtype)",
    "  m = expectations(circuit, theta, key, dtype)",
    ("tests/test_superpose.py",),
  ),
  Mutant(
    "finite-clip-removed",
    "modulation",
    "qsgd_optax/_src/modulation.py",
    "out = jnp.where(jnp.isinf(xc), out, jnp.clip(out, -big, big))",
    "out = out",
    ("tests/test_properties.py", "tests/test_superpose.py"),
  ),
  Mutant(
    "padding-angle",
    "grouping and padding",
    "qsgd_optax/_src/grouping.py",
    "t = jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, pad)])",
    "t = jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, pad)], constant_values=0.25)",
    ("tests/test_superpose.py",),
  ),
  Mutant(
    "shifted-grouping-offset",
    "grouping and padding",
    "qsgd_optax/_src/grouping.py",
    "(z_k,) = backend.columns([shifted(j - k) for j in range(n)], (k,))",
    "(z_k,) = backend.columns([shifted(k - j) for j in range(n)], (k,))",
    ("tests/test_one_loop.py",),
  ),
  Mutant(
    "analytic-parity",
    "analytic backend",
    "qsgd_optax/backends/analytic.py",
    "    for j in parity_sets[i][1:]:\n      prod = prod * z[j]",
    "    for j in parity_sets[i][2:]:\n      prod = prod * z[j]",
    ("tests/test_analytic.py",),
  ),
  Mutant(
    "analytic-sinpi",
    "analytic backend",
    "qsgd_optax/backends/analytic.py",
    "  3.1415926369756333,",
    "  3.14159,",
    ("tests/test_analytic.py",),
  ),
  Mutant(
    "pauli-cnot-sign",
    "pauli backend",
    "qsgd_optax/backends/pauli.py",
    "(X, Z): (-1, Y, Y),",
    "(X, Z): (1, Y, Y),",
    ("tests/test_pauli.py",),
  ),
  Mutant(
    "statevector-cnot",
    "statevector backend",
    "qsgd_optax/backends/statevector.py",
    "idx = np.where(idx & cbit, idx ^ tbit, idx)",
    "idx = np.where(idx & cbit, idx ^ cbit, idx)",
    ("tests/test_statevector.py",),
  ),
  Mutant(
    "pennylane-gates",
    "pennylane backend",
    "qsgd_optax/backends/pennylane.py",
    '"RY": qml.RY, "RZ": qml.RZ',
    '"RY": qml.RZ, "RZ": qml.RY',
    ("tests/test_pennylane_backend.py",),
  ),
  Mutant(
    "gradient-placement-dropped",
    "placements",
    "qsgd_optax/_src/alias.py",
    "direction, adam_state = adam.update(scale(updates, weight, m), state.adam, params)",
    "direction, adam_state = adam.update(updates, state.adam, params)",
    ("tests/test_alias.py",),
  ),
  Mutant(
    "update-placement-sign",
    "placements",
    "qsgd_optax/_src/alias.py",
    "direction = optax.tree.add(direction, term(updates, weight, m))",
    "direction = optax.tree.sub(direction, term(updates, weight, m))",
    ("tests/test_alias.py",),
  ),
  Mutant(
    "direction-bound",
    "placements",
    "qsgd_optax/_src/alias.py",
    "DIRECTION_BOUND = 1.0",
    "DIRECTION_BOUND = 1.5",
    ("tests/test_direction.py",),
  ),
  Mutant(
    "adam-state-frozen",
    "Adam's state",
    "qsgd_optax/_src/alias.py",
    "m)\n    return direction, ScaleByQSGDState(adam_state, new_key)",  # the last return
    "m)\n    return direction, ScaleByQSGDState(state.adam, new_key)",
    ("tests/test_adam_state.py",),
  ),
  Mutant(
    "schedule-off-by-one",
    "Adam's state",
    "qsgd_optax/_src/alias.py",
    "weight = quantum_weight(state.adam.count) if callable",
    "weight = quantum_weight(state.adam.count + 1) if callable",
    ("tests/test_alias.py", "tests/test_adam_state.py"),
  ),
  Mutant(
    "key-never-advances",
    "checkpoint path",
    "qsgd_optax/_src/superpose.py",
    "  new_key, key_now = jax.random.split(key)\n  return new_key, key_now",
    "  new_key, key_now = jax.random.split(key)\n  return key, key_now",
    ("tests/test_checkpoint.py",),
  ),
  Mutant(
    "attention-series-sign",
    "attention score circuit",
    "qsgd_optax/_src/attention.py",
    "out = out + re[k] * ck + im[k] * sk",
    "out = out + re[k] * ck - im[k] * sk",
    ("tests/test_attention.py",),
  ),
  Mutant(
    "attention-readout",
    "attention score circuit",
    "qsgd_optax/_src/attention.py",
    "return probs[..., :n].sum(-1)",
    "return probs[..., 1 : n + 1].sum(-1)",
    ("tests/test_attention.py",),
  ),
]


def copy_tree(dst):
  ignore = shutil.ignore_patterns(".git", "_build", "__pycache__", "*.egg-info", "results", ".whl")
  shutil.copytree(ROOT, dst, ignore=ignore)


def run_mutant(m):
  with tempfile.TemporaryDirectory() as tmp:
    work = os.path.join(tmp, "repo")
    copy_tree(work)
    path = os.path.join(work, m.path)
    with open(path) as f:
      text = f.read()
    assert text.count(m.old) == 1, f"{m.name}: the snippet occurs {text.count(m.old)} times"
    with open(path, "w") as f:
      f.write(text.replace(m.old, m.new))
    env = dict(os.environ, PYTHONPATH=work)
    check = "import qsgd_optax, sys; assert qsgd_optax.__file__.startswith(sys.argv[1])"
    subprocess.run([sys.executable, "-c", check, work], check=True, env=env, cwd=work)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-rf"]
    start = time.time()
    out = subprocess.run(cmd + list(m.tests), capture_output=True, text=True, env=env, cwd=work)
    failed = re.findall(r"^FAILED (\S+)", out.stdout, re.M)
    return dict(
      **m._asdict(),
      caught=out.returncode != 0,
      by=failed[0] if failed else ("(error)" if out.returncode not in (0, 1) else None),
      seconds=round(time.time() - start, 1),
      tail=out.stdout[-800:],
    )


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--only", nargs="*")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  rows = []
  for m in MUTANTS:
    if args.only and m.name not in args.only:
      continue
    row = run_mutant(m)
    print(f"{m.name:28s} {'caught' if row['caught'] else 'SURVIVED':8s} {row['by']}", flush=True)
    rows.append(row)
  lines = [
    f"{time.strftime('%Y-%m-%d')}: {sum(r['caught'] for r in rows)} of {len(rows)} mutants caught.",
    "",
    "| mutant | area | change (in `path`) | caught by |",
    "| --- | --- | --- | --- |",
  ]
  for r in rows:
    change = f"`{r['old'].strip().splitlines()[-1]}` -> `{r['new'].strip().splitlines()[-1]}`"
    by = f"`{r['by']}`" if r["caught"] else "**survived**"
    lines.append(f"| {r['name']} | {r['area']} | {change} (`{r['path']}`) | {by} |")
  os.makedirs(args.out, exist_ok=True)
  # The platform jax runs the tests on, asked after the runs (they are subprocesses).
  import jax  # pylint: disable=import-outside-toplevel

  name = os.path.join(args.out, f"mutations-{jax.default_backend()}")
  with open(name + ".md", "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(name + ".json", "w") as f:
    json.dump([{k: v for k, v in r.items() if k != "tail"} for r in rows], f, indent=1)
  print("\n".join(lines))
  if not all(r["caught"] for r in rows):
    sys.exit(1)


if __name__ == "__main__":
  main()
