"""Rebuild a run's tables after its controller died before finishing (SIGKILL, power loss).

Nothing measured is lost on such a crash: every program's raw wrapper lines are in
``logs/<test>/<device>.<program>.jsonl`` (headed by a ``program`` line naming run, test,
device and role), and every ``record()`` is in a results journal under ``.parts/``.
Only the Parquet files, written at the end, are missing; this writes them from those.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from pytest_collab.errors import RunDataError
from pytest_collab.results.rundir import RunDir


def _programs(logs: Path) -> Iterator[tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]]:
    """(program header, units, samples) for each raw wrapper log that has a header."""
    for path in sorted(logs.rglob("*.jsonl")):
        header: dict[str, Any] | None = None
        units: dict[str, str] = {}
        samples: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a line torn by the crash
            kind = obj.get("k") if isinstance(obj, dict) else None
            if kind == "program":
                header = obj
            elif kind == "start":
                units = obj.get("units") or {}
            elif kind == "m":
                samples.append(obj)
        if header is not None:
            yield header, units, samples


def recover_run(run_dir: Path) -> list[str]:
    """Write whatever of metrics.parquet, results.parquet and run.json is missing; say what."""
    from pytest_collab.results.metrics import MetricsWriter
    from pytest_collab.results.records import write_results_parquet

    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise RunDataError(f"{run.root}: no such run folder; pass a folder under reports/")
    done: list[str] = []
    if not run.metrics.is_file():
        rows = 0
        with MetricsWriter(run.metrics) as writer:
            for header, units, samples in _programs(run.logs):
                writer.add_samples(run=header["run"], test=header["test"], device=header["device"],
                                   role=header["role"], pid=0, samples=samples, units=units)
                rows += sum(len(s.get("v", {})) for s in samples)
        done.append(f"metrics.parquet: {rows} rows from the programs' raw logs")
    if not run.results.is_file():
        journals = sorted(run.parts.glob("results-*.jsonl")) if run.parts.is_dir() else []
        write_results_parquet(journals, run.results)
        done.append(f"results.parquet: from {len(journals)} results journal(s)")
    if not run.run_json.is_file():
        run.write_run_json({"run_id": run.root.name, "recovered": True,
                            "note": "the controller died before the run finished; rebuilt by collab recover"})
        done.append("run.json: a minimal one (the original was never written)")
    for part in run.parts.glob("*.tmp") if run.parts.is_dir() else []:
        part.unlink()  # half-written Parquet parts: their rows came back from the raw logs
    return done or ["nothing to recover: the run finished normally"]
