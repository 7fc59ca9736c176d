"""Rebuild a run's tables after its controller died before finishing (SIGKILL, power loss).

Nothing measured is lost on such a crash: every program's raw wrapper lines are in
``logs/<test>/<device>.<program>.jsonl`` (headed by a ``program`` line naming run, test,
device and program), every ``record()`` and every printed ``COLLAB_RESULT`` row is in a
journal under ``.parts/``, and so is each test's run.json entry; the controller wrote
the run's header (git, profile, options) there when the run began. The rules that turn
parts into tables are :mod:`pytest_collab.results.assemble`'s, shared with a normal end.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from pytest_collab.errors import RunDataError
from pytest_collab.results.rundir import RunDir


def controller_alive(run: RunDir) -> int | None:
    """The pid of the run's controller when it still runs on this host, else None."""
    import json

    from pytest_collab.results.assemble import HEADER

    try:
        header = json.loads((run.parts / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid, host = header.get("pid"), header.get("host")
    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, someone else's
    return pid


def needs_recovery(run: RunDir) -> bool:
    """A run folder with parts but no run.json whose controller is not alive on this host."""
    return not run.run_json.is_file() and run.parts.is_dir() and controller_alive(run) is None


def unfinished_runs(out_dir: Path) -> list[Path]:
    """Run folders under ``out_dir`` that `collab recover` should rebuild."""
    from pytest_collab.results.rundir import is_run_id

    if not Path(out_dir).is_dir():
        return []
    return [p for p in sorted(Path(out_dir).iterdir())
            if p.is_dir() and not p.is_symlink() and is_run_id(p.name) and needs_recovery(RunDir(p))]


def recover_run(run_dir: Path) -> list[str]:
    """Write whatever of metrics.parquet, results.parquet and run.json is missing; say what."""
    from pytest_collab.results.assemble import clear_parts, rebuilt_run_info, write_metrics, write_results

    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise RunDataError(f"{run.root}: no such run folder; pass a folder under reports/")
    alive = controller_alive(run) if not run.run_json.is_file() else None
    if alive is not None:
        raise RunDataError(f"{run.root}: the run is still going (its pytest, pid {alive}, is alive); "
                           "wait for it to finish, or stop it, then recover")
    done: list[str] = []
    info = run.read_run_json() if run.run_json.is_file() else rebuilt_run_info(run)
    if not run.metrics.is_file():
        _, rows, dead = write_metrics(run)
        done.append(f"metrics.parquet: {rows} rows rebuilt from the programs' raw logs"
                    + (f" (processes that died: {', '.join(dead)})" if dead else ""))
    if not run.results.is_file():
        outcomes = {k: str(v.get("outcome")) for k, v in (info.get("tests") or {}).items()}
        _, printed = write_results(run, outcomes)
        done.append(f"results.parquet: from the results journals, with {printed} row(s) printed by "
                    "programs of tests that did not pass")
    if not run.run_json.is_file():
        run.write_run_json(info)
        done.append(f"run.json: rebuilt with git, profile, options and {len(info.get('tests', {}))} "
                    "test outcome(s) known so far")
    if done:
        clear_parts(run)
    return done or ["nothing to recover: the run finished normally"]
