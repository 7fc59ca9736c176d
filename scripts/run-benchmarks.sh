#!/usr/bin/env bash
# Every benchmark prints ratios measured side by side in the same run. All of them run;
# the job fails at the end, naming each benchmark that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# bench_deploy needs a docker engine: start one for the job where Docker is installed
# but not running (no systemd), stop it afterwards.
# shellcheck source=lib/job-dockerd.sh
. scripts/lib/job-dockerd.sh
trap stop_job_dockerd EXIT
start_job_dockerd reports/bench-dockerd.log

failed=()
for bench in benchmarks/bench_*.py; do
  echo "=== $bench"
  "$VENV/bin/python" "$bench" || failed+=("$bench")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run-benchmarks: failed: ${failed[*]}" >&2
  exit 1
fi
