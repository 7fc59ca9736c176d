"""Device program: submit the Flower app to the SuperLink with `flwr run` and stream its logs.

The ServerApp's COLLAB_RESULT lines arrive through Flower's log stream and are re-printed
bare, so ``Program.results()`` reads them. Exits 0 only when Flower reports the run
finished successfully; otherwise 1 with the run's status.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _launch import flower_bin, flower_env

APP_DIR = Path(__file__).resolve().parent / "app"
RESULT = "COLLAB_RESULT "


def write_connection(home: str, superlink: str) -> None:
    """The `flwr` CLI reads SuperLink addresses from FLWR_HOME/config.toml only."""
    Path(home, "config.toml").write_text(
        '[superlink]\ndefault = "collab"\n\n'
        f'[superlink.collab]\naddress = "{superlink}"\ninsecure = true\n', encoding="utf-8")


def run_status(flwr: str, env: dict[str, str], run_id: str) -> str:
    out = subprocess.run([flwr, "list", "collab", "--run-id", run_id, "--format", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    try:
        runs = json.loads(out.stdout)["runs"]
        return str(runs[0]["status"])
    except (ValueError, KeyError, IndexError):
        return f"unknown ({out.stdout.strip() or out.stderr.strip()})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--superlink", required=True, help="SuperLink host:port")
    ap.add_argument("-c", "--run-config", action="append", default=[],
                    help="key=value override of [tool.flwr.app.config]; repeatable")
    ap.add_argument("--app", default=str(APP_DIR), help=f"Flower app folder; default {APP_DIR}")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="collab-flwr-run-")
    write_connection(home, a.superlink)
    env = flower_env(home)
    flwr = flower_bin("flwr")
    argv = [flwr, "run", a.app, "collab", "--stream"]
    for kv in a.run_config:
        argv += ["--run-config", kv]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1)
    run_id = None
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if RESULT in line:  # log records may carry a prefix; keep the result bare
            print(line[line.index(RESULT):], flush=True)
            continue
        print(line, flush=True)
        if run_id is None and (m := re.search(r"started run (\d+)", line)):
            run_id = m[1]
    code = proc.wait()
    if run_id is None:
        print(f"flwr run exited {code} without starting a run on {a.superlink}; is the "
              "SuperLink up (superlink.py) and the app folder valid?", file=sys.stderr)
        return 1
    status = run_status(flwr, env, run_id)
    print(f"Flower run {run_id} status: {status}", flush=True)
    return 0 if "completed" in status else 1


if __name__ == "__main__":
    sys.exit(main())
