"""The Runs page's data: every run folder under the reports folder, and what can be done to one.

A run is read from its ``run.json`` (see :mod:`pytest_collab.results.rundir`); a folder
still being written has live state files instead (:mod:`.publish`), and a folder with
neither is listed with its problem rather than hidden. Names come from the URL, so a
run is only ever looked up as a direct child of the reports folder.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from pytest_collab.dashboard.publish import live_dir
from pytest_collab.errors import CollabError, RunDataError
from pytest_collab.results.rundir import LATEST, RunDir

#: ``alive(state)``: does the pytest of a live state file still run? (LiveMonitor.alive)
Alive = Optional[Callable[[dict[str, Any]], bool]]
TAG_RE = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def run_folder(reports: Path, name: str) -> RunDir:
    """``reports/<name>`` when ``name`` is a plain folder name there; RunDataError otherwise."""
    if not name or name in (".", "..", LATEST) or "/" in name or "\\" in name or name.startswith("."):
        raise RunDataError(f"{name!r} is not a run folder name (expected a run id under {reports})")
    path = Path(reports) / name
    if not path.is_dir() or path.is_symlink():
        raise RunDataError(f"{path}: no such run folder under {reports}")
    return RunDir(path)


def live_states(run: RunDir) -> list[dict[str, Any]]:
    """The live state files of a run (unreadable ones are skipped: they are being replaced)."""
    states = []
    for path in sorted(live_dir(run.root).glob("*.json")):
        try:
            states.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return states


def _seconds(start: Any, end: Any) -> float | None:
    try:
        return (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except (TypeError, ValueError):
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _counts(tests: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for info in tests.values():
        outcome = str(info.get("outcome") or "unknown") if isinstance(info, dict) else "unknown"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def summarize(run: RunDir, alive: Alive = None) -> dict[str, Any]:
    """One row of the Runs page; ``alive(state)`` says whether a live session still runs."""
    row: dict[str, Any] = {"id": run.run_id, "path": str(run.root), "report": run.report_html.is_file(),
                           "results": run.results.is_file()}
    if not run.run_json.exists():
        states = live_states(run)
        running = [s for s in states if s.get("state") == "running" and (alive is None or alive(s))]
        if running:
            counts: dict[str, int] = {}
            for s in states:
                for k, v in s.get("counts", {}).items():
                    counts[k] = counts.get(k, 0) + int(v)
            return {**row, "status": "running", "profile": running[0].get("profile"), "counts": counts,
                    "started": datetime.fromtimestamp(min(s["started"] for s in states)).isoformat(
                        timespec="seconds")}
        problem = (f"{run.run_json}: missing; the run ended without writing it (pytest was killed?): "
                   f"`collab recover {run.root}` rebuilds it" if states or run.logs.is_dir() else
                   f"{run.run_json}: missing; {run.root} is not a pytest-collab run folder")
        return {**row, "status": "incomplete" if states or run.logs.is_dir() else "not a run",
                "problem": problem}
    try:
        info = run.read_run_json()
    except RunDataError as exc:
        return {**row, "status": "broken", "problem": str(exc)}
    counts = _counts(_mapping(info.get("tests")))
    git, profile = _mapping(info.get("git")), _mapping(info.get("profile"))
    return {**row, "status": "failed" if counts.get("failed") else "passed",
            "started": info.get("started"), "finished": info.get("finished"),
            "duration_s": _seconds(info.get("started"), info.get("finished")),
            "profile": profile.get("name"), "commit": git.get("commit"), "branch": git.get("branch"),
            "dirty": git.get("dirty"), "counts": counts, "tags": list(info.get("tags") or [])}


def list_runs(reports: Path, alive: Alive = None) -> list[dict[str, Any]]:
    """Every folder under ``reports`` (newest first), each summarized."""
    reports = Path(reports)
    if not reports.is_dir():
        return []
    folders = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    return [summarize(RunDir(p), alive) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def set_tag(reports: Path, name: str, tag: str, remove: bool = False) -> list[str]:
    """Add (or remove) a tag in the run's ``run.json``; returns the run's tags."""
    if not TAG_RE.match(tag or ""):
        raise CollabError(f"tag {tag!r}: use 1-40 letters, digits, '.', '_' or '-'")
    run = run_folder(reports, name)
    if live_states(run) and not run.run_json.exists():
        raise CollabError(f"{run.root} is still running; tag it once it finished")
    info = run.read_run_json()
    tags = [t for t in info.get("tags") or [] if t != tag]
    if not remove:
        tags.append(tag)
    info["tags"] = tags
    run.write_run_json(info)
    return tags


def delete_run(reports: Path, name: str, alive: Alive = None) -> str:
    """Remove a finished run folder (a running one is refused); ``latest`` is re-pointed."""
    run = run_folder(reports, name)
    if summarize(run, alive).get("status") == "running":
        raise CollabError(f"{run.root} is still running; stop pytest first")
    shutil.rmtree(run.root)
    latest = Path(reports) / LATEST
    if latest.is_symlink() and not latest.exists():
        latest.unlink()
    return str(run.root)


def render_report(reports: Path, name: str) -> Path:
    """(Re)write the run's report.html, as ``collab report`` does."""
    from pytest_collab.report import render_report as render

    run = run_folder(reports, name)
    run.read_run_json()  # a folder that is not a run gets its own clear error
    return Path(render(run.root))


def comparisons(reports: Path, names: list[str]) -> list[tuple[Any, Any, Any]]:
    """(comparison, baseline frame, frame) of every run against the first (the baseline)."""
    from pytest_collab.share.compare import compare_frames, load_results

    if len(names) < 2:
        raise CollabError("compare needs two or more runs: the first is the baseline")
    runs = [run_folder(reports, n) for n in names]
    loaded = [load_results(r.root) for r in runs]
    base, info_base = loaded[0]
    return [(compare_frames(base, info_base, frame, info, label_a=runs[0].run_id, label_b=run.run_id), base, frame)
            for run, (frame, info) in zip(runs[1:], loaded[1:])]


def compare_summary(reports: Path, names: list[str]) -> list[dict[str, Any]]:
    """The compare view for scripts: verdicts and the same table ``collab compare`` prints."""
    from pytest_collab.share.compare_render import table_lines

    return [{"baseline": cmp.label_a, "run": cmp.label_b, "passed": cmp.passed,
             "failed_metrics": list(cmp.failed_metrics), "table": table_lines(cmp)}
            for cmp, _, _ in comparisons(reports, names)]


def compare_html(reports: Path, names: list[str]) -> str:
    """The compare view of two or more runs: each one against the first (the baseline)."""
    import html

    from pytest_collab.share.compare_render import section_html

    parts = []
    for cmp, base, frame in comparisons(reports, names):
        verdict = "PASS" if cmp.passed else "FAIL: " + ", ".join(cmp.failed_metrics)
        parts.append(f"<section class='compare'><h2>{html.escape(cmp.label_b)} vs baseline "
                     f"{html.escape(cmp.label_a)}: {html.escape(verdict)}</h2>"
                     f"{section_html(cmp, base, frame)}</section>")
    return "\n".join(parts)
