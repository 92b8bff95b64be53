#!/usr/bin/env bash
# The README's test command timed as a newcomer runs it: for each revision, a fresh clone of this
# repository, a fresh virtual environment, `pip install -e '.[dev]' && python -m pytest`
# (with --durations=15). Run revisions back to back to compare them in the same hour:
#   bash tools/suite_time.sh HEAD~1 HEAD   (any revisions: tags, branches, hashes)
#   PYTHON=~/.pyenv/versions/3.12.1/bin/python bash tools/suite_time.sh HEAD   (another Python)
#   TAG=-quick PYTEST_ARGS=@args.txt bash tools/suite_time.sh HEAD   (extra pytest arguments,
#     one per line in args.txt, e.g. a -m expression; TAG names the output file)
# Output: one line per step on stdout; each run's pytest output in $OUT (default /tmp/suite_time).
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
out=${OUT:-/tmp/suite_time}
mkdir -p "$out"
for rev in "$@"; do
  sha=$(git -C "$repo" rev-parse --short "$rev")
  work=$(mktemp -d)
  git clone -q "$repo" "$work/clone" && git -C "$work/clone" checkout -q "$sha"
  "$python" -m venv "$work/venv" || { echo "no Python at $python" >&2; exit 1; }
  cd "$work/clone" || exit 1
  start=$SECONDS
  "$work/venv/bin/pip" install -q -e '.[dev]' >/dev/null 2>&1
  echo "$sha install $((SECONDS - start)) s"
  echo "$sha pytest start $(date -u +%H:%M:%S)"
  start=$SECONDS
  # shellcheck disable=SC2086  # PYTEST_ARGS: extra arguments, word-split on purpose.
  "$work/venv/bin/python" -m pytest -p no:cacheprovider --durations=15 ${PYTEST_ARGS:-} >"$out/$sha${TAG:-}.txt" 2>&1
  echo "$sha pytest rc $? wall $((SECONDS - start)) s: $(tail -1 "$out/$sha${TAG:-}.txt")"
  cd "$repo" && rm -rf "$work"
done
