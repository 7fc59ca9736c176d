#!/usr/bin/env bash
# CI job: replay every shipped bundle in bundles/ and fail on a regression.
#
# Replays on the emulated lab (devices as containers) when Docker answers and a
# network_profiles/emulated.yaml exists, else on the local lab. Each replay prints the
# lab class of the baseline and of the replay, the table of deltas, and writes
# replay.html into its run folder under reports/replays/.
#
#   scripts/ci-replay.sh                 # all bundles
#   scripts/ci-replay.sh bundles/x.collab.tar.gz
#   LAN=local scripts/ci-replay.sh       # force a lab
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
# shellcheck source=lib/job-dockerd.sh
. scripts/lib/job-dockerd.sh

cleanup() {
    if [ "${LAN:-}" = emulated ]; then
        "$PY" -m pytest_collab lab down emulated >/dev/null 2>&1 || true
    fi
    stop_job_dockerd
}
trap cleanup EXIT

# A CI machine has Docker installed but no engine running (no systemd): start one for
# this job, as the test fixtures do, so the replay uses the emulated lab it was made for.
if [ -z "${LAN:-}" ] && [ -f network_profiles/emulated.yaml ]; then
    start_job_dockerd reports/ci-replay-dockerd.log
fi

if [ -z "${LAN:-}" ]; then
    if [ -f network_profiles/emulated.yaml ] && command -v docker >/dev/null 2>&1 \
        && docker info >/dev/null 2>&1; then
        LAN=emulated
    else
        LAN=local
    fi
fi

if [ "$LAN" = emulated ]; then
    # The emulated lab's containers are this job's own: up now, down however it ends.
    "$PY" -m pytest_collab lab up emulated
fi

bundles=("$@")
if [ ${#bundles[@]} -eq 0 ]; then
    shopt -s nullglob
    bundles=(bundles/*.collab.tar.gz)
fi
if [ ${#bundles[@]} -eq 0 ]; then
    echo "ci-replay: no bundles to replay in bundles/" >&2
    exit 1
fi

failed=0
for bundle in "${bundles[@]}"; do
    echo "=== replay $bundle on --lan=$LAN"
    if ! "$PY" -m pytest_collab bundle replay "$bundle" --lan "$LAN" \
            --out "reports/replays/$(basename "$bundle" .collab.tar.gz)" --pytest-args="-q"; then
        echo "ci-replay: REGRESSION (or failed run) in $bundle" >&2
        failed=1
    fi
done
exit $failed
