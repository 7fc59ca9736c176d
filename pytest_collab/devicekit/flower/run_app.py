"""Device program: submit a Flower app to the SuperLink with ``flwr run``, then read the
run's real final status.

Stock ``flwr run --stream`` exits 0 even when the ServerApp crashed (Flower's own
``Exit Code: 201`` only shows in the stream), so this program asks the SuperLink for the
run's status (``flwr list --run-id``) and exits 0 only for ``finished:completed``.

The app comes as a folder (``--app``) or as a ``.tar.gz`` of one (``--app-archive``,
what the controller ships with ``collab.put``), unpacked into a private folder first.
Prints ``COLLAB_RESULT`` rows: ``{"flower": "started", "run_id"}`` once Flower accepted
the run, and ``{"flower": "run", "run_id", "status", "error"}`` at the end (``error``
holds the end of Flower's log stream when the run did not complete). The app's own
``COLLAB_RESULT`` lines arriving through the log stream are re-printed bare.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..emit import PREFIX as RESULT
from ..emit import emit
from ._launch import check_flower, flower_bin, flower_env

ERROR_LINES = 25


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


def unpack(archive: str) -> str:
    """The app folder inside ``archive`` (one top-level folder holding pyproject.toml)."""
    dest = Path(tempfile.mkdtemp(prefix="collab-flwr-app-"))
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # a Python without extraction filters (< 3.9.17): our own archive
            tar.extractall(dest)
    found = [p.parent for p in dest.glob("*/pyproject.toml")]
    if len(found) != 1:
        sys.exit(f"{archive}: expected one app folder with a pyproject.toml, found {len(found)}")
    return str(found[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--superlink", required=True, help="SuperLink host:port")
    ap.add_argument("-c", "--run-config", action="append", default=[],
                    help="key=value override of [tool.flwr.app.config]; repeatable")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--app", help="Flower app folder (pyproject.toml with [tool.flwr.app])")
    src.add_argument("--app-archive", help="a .tar.gz holding the app folder")
    a = ap.parse_args()
    check_flower()
    app = a.app or unpack(a.app_archive)
    home = tempfile.mkdtemp(prefix="collab-flwr-run-")
    write_connection(home, a.superlink)
    env = flower_env(home)
    flwr = flower_bin("flwr")
    argv = [flwr, "run", app, "collab", "--stream"]
    for kv in a.run_config:
        argv += ["--run-config", kv]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1)
    run_id = None
    last: collections.deque[str] = collections.deque(maxlen=ERROR_LINES)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if RESULT in line:  # log records may carry a prefix; keep the result bare
            print(line[line.index(RESULT):], flush=True)
            continue
        print(line, flush=True)
        last.append(line)
        if run_id is None and (m := re.search(r"started run (\d+)", line)):
            run_id = m[1]
            emit({"flower": "started", "run_id": int(run_id)})
    code = proc.wait()
    if run_id is None:
        error = "\n".join(last)
        emit({"flower": "run", "run_id": None, "status": "not started", "error": error})
        print(f"flwr run exited {code} without starting a run on {a.superlink}; is the "
              "SuperLink up and the app folder valid?", file=sys.stderr)
        return 1
    status = run_status(flwr, env, run_id)
    ok = "completed" in status
    emit({"flower": "run", "run_id": int(run_id), "status": status, "flwr_exit": code,
          "error": None if ok else "\n".join(last)})
    print(f"Flower run {run_id} status: {status}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
