"""From a run's parts to its tables: one path for a normal end and for ``collab recover``.

Each process (the controller, each xdist worker) leaves in ``<run>/.parts/``, named
``<worker>-<pid>``: a metrics part (``.parquet`` once closed, ``.parquet.tmp`` while open
or after its process died), a results journal, a journal of the rows its programs
printed and a journal of its tests' entries. A process that died never closed its
metrics part, but every sample is in the raw wrapper logs under ``logs/``; so the
metrics of every test not covered by a closed part are rebuilt from those logs. The
same rules serve the controller at the end of a run (a ``kill -9``'d worker) and
``collab recover`` after the controller itself died: nothing measured is lost.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from pytest_collab.results.metrics import LEGACY_PROGRAM_COLUMN
from pytest_collab.results.records import read_journal
from pytest_collab.results.rundir import RunDir
from pytest_collab.wrapper.emit import decode

HEADER = "run-header.json"
DIED = "the run's process died while the test ran (rebuilt from the journals)"


def _proc(part: Path, prefix: str, suffix: str) -> str:
    return part.name[len(prefix):-len(suffix)]


def raw_programs(logs: Path) -> Iterator[tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]]:
    """(program header, units, samples) for each raw wrapper log that has a header.

    The header names the program under ``program`` (logs written before the rename: ``role``)."""
    for path in sorted(logs.rglob("*.jsonl")) if logs.is_dir() else []:
        header: dict[str, Any] | None = None
        units: dict[str, str] = {}
        samples: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            obj = decode(line)
            if obj is None:
                continue  # a line torn by the crash
            kind = obj["k"]
            if kind == "program":
                header = {**obj, "program": obj.get("program", obj.get(LEGACY_PROGRAM_COLUMN, ""))}
            elif kind == "start":
                units = obj.get("units") or {}
            elif kind == "m":
                samples.append(obj)
        if header is not None:
            yield header, units, samples


def journal_tests(parts: Path, proc: str = "*") -> dict[str, dict[str, Any]]:
    """Test -> its last journalled entry (``running`` tells whether it ever finished)."""
    tests: dict[str, dict[str, Any]] = {}
    for path in sorted(parts.glob(f"tests-{proc}.jsonl")) if parts.is_dir() else []:
        for line in read_journal(path):
            tests[str(line["test"])] = dict(line.get("info") or {}, _running=bool(line.get("running")))
    return tests


def dead_processes(parts: Path) -> list[str]:
    """Processes whose metrics part was never closed (a crash; or still running)."""
    if not parts.is_dir():
        return []
    return sorted(_proc(p, "metrics-", ".parquet.tmp") for p in parts.glob("metrics-*.parquet.tmp"))


def write_metrics(run: RunDir) -> tuple[Path, int, list[str]]:
    """``metrics.parquet`` from the closed parts plus raw logs of every test they miss.

    Returns (path, rows rebuilt from raw logs, dead processes).
    """
    from pytest_collab.results.metrics import MetricsWriter, merge_parquet, metrics_schema

    parts = run.parts
    closed = sorted(parts.glob("metrics-*.parquet")) if parts.is_dir() else []
    covered: set[str] = set()
    for part in closed:
        covered |= set(journal_tests(parts, _proc(part, "metrics-", ".parquet")))
    rebuilt_part = parts / "metrics-recovered.parquet"
    rows = 0
    missing = [p for p in raw_programs(run.logs) if p[0].get("test") not in covered]
    if missing:
        parts.mkdir(parents=True, exist_ok=True)
        with MetricsWriter(rebuilt_part) as writer:
            for header, units, samples in missing:
                writer.add_samples(run=header["run"], test=header["test"], device=header["device"],
                                   program=header["program"], pid=0, samples=samples, units=units)
                rows += sum(len(s.get("v", {})) for s in samples)
        closed.append(rebuilt_part)
    merge_parquet(closed, run.metrics, metrics_schema())
    return run.metrics, rows, dead_processes(parts)


def write_results(run: RunDir, outcomes: Mapping[str, str]) -> tuple[Path, int]:
    """``results.parquet``: every ``record()`` row, plus printed rows no passing test recorded."""
    from pytest_collab.results.program_rows import unrecorded_rows
    from pytest_collab.results.records import write_results_parquet

    parts = run.parts
    journals = sorted(parts.glob("results-*.jsonl")) if parts.is_dir() else []
    printed = unrecorded_rows(sorted(parts.glob("programs-*.jsonl")) if parts.is_dir() else [], outcomes)
    write_results_parquet(journals, run.results, extra_rows=printed)
    return run.results, len(printed)


def recorded_so_far(run: RunDir) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's info and its ``record()`` rows, finished or still running: a test later in
    the same session (split_plan after link_baseline) reads what an earlier one recorded."""
    if run.run_json.is_file() and run.results.is_file():
        from pytest_collab.results.records import read_results

        rows = cast("list[dict[str, Any]]", read_results(run.root).to_dict("records"))  # columns are str
        return run.read_run_json(), rows
    header = json.loads((run.parts / HEADER).read_text(encoding="utf-8"))
    return header, [row for path in sorted(run.parts.glob("results-*.jsonl")) for row in read_journal(path)]


def rebuilt_run_info(run: RunDir) -> dict[str, Any]:
    """run.json from the header the controller wrote at start and the tests journals."""
    header: dict[str, Any] = {}
    try:
        header = json.loads((run.parts / HEADER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        header = {"run_id": run.root.name}
    tests = {}
    for nodeid, info in journal_tests(run.parts).items():
        if info.pop("_running") or "outcome" not in info:
            info["outcome"], info["reason"] = "interrupted", DIED
        tests[nodeid] = info
    header.update(tests=tests, recovered=True, finished=None,
                  note="the run's controller died before the run finished; rebuilt by collab recover")
    return header


def clear_parts(run: RunDir) -> None:
    """Remove the parts once the tables are written (they are all in them now)."""
    parts = run.parts
    if not parts.is_dir():
        return
    for part in parts.iterdir():
        if part.is_file():
            part.unlink(missing_ok=True)
    try:
        parts.rmdir()
    except OSError:
        pass
