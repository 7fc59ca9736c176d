#!/usr/bin/env bash
# Re-make the shipped bundles in bundles/ from a fresh run of the current code.
#
# CI replays every bundle (scripts/ci-replay.sh), and a replay refuses a bundle whose
# code differs from testcases/<name>/ (tests/test_shipped_bundles.py says so earlier,
# in `make test`). After changing a shipped test case, run this and commit the result:
#
#   scripts/remake-bundles.sh            # or: make bundles
#
# Each bundle's baseline is a run on the emulated lab (the lab CI replays on), with the
# tolerances in bundles/<name>.tolerances.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
# shellcheck source=lib/job-dockerd.sh
. scripts/lib/job-dockerd.sh

out="$(mktemp -d /tmp/collab-bundles.XXXXXX)"
cleanup() {
    "$PY" -m pytest_collab lab down emulated >/dev/null 2>&1 || true
    stop_job_dockerd
    rm -rf "$out"
}
trap cleanup EXIT

start_job_dockerd reports/remake-bundles-dockerd.log
if ! docker info >/dev/null 2>&1; then
    echo "remake-bundles: Docker does not answer; the shipped baselines are emulated-lab runs" \
         "(start dockerd, or run as root so this script can)" >&2
    exit 1
fi
"$PY" -m pytest_collab lab up emulated

# name | pytest arguments of the baseline run (keep in step with docs/sharing.md)
remake() {
    local name="$1"; shift
    "$PY" -m pytest "testcases/$name" --lan=emulated --collab-out="$out/$name" \
        -p no:cacheprovider -q "$@"
    "$PY" -m pytest_collab bundle export "testcases/$name" --run "$out/$name/latest" \
        --tolerances "bundles/$name.tolerances.json" -o "bundles/$name.collab.tar.gz"
}

remake link_baseline --link-sizes=1,64,1024
echo "remake-bundles: done; check with scripts/ci-replay.sh, then commit bundles/"
