#!/usr/bin/env bash
# The whole suite: unit and pytester tests, integration tests against real services,
# and the shipped experiments on the embedded local lab.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/pytest" tests testcases -p no:cacheprovider -rs --durations=15 "$@"
status=$?
if [ $status -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit $status
