#!/usr/bin/env bash
# Every benchmark prints ratios measured side by side in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
for bench in benchmarks/bench_*.py; do
  echo "=== $bench"
  "$VENV/bin/python" "$bench"
done
