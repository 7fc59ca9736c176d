"""``pytest --collab-replay BUNDLE``: re-run a bundle's test case and gate it on its baseline.

Plain functions the plugin calls, so the flow is testable without pytest's hooks:

1. :func:`prepare_replay` (before conftests load: the test case's ``options.py`` must be
   seen by the root conftest) unpacks the bundle and returns the pytest arguments: the
   experiment options the baseline ran with, then the baseline's test node ids;
2. pytest runs them on whatever lab ``--lan`` names;
3. :func:`finish_replay` (after the run folder is complete) compares the fresh results
   with the baseline under the bundle's tolerances, writes ``replay.html`` and a
   ``replay`` entry in ``run.json``, and states the lab class of both runs;
4. :func:`replay_lines` is the terminal summary; the plugin exits non-zero on a regression.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_collab.report.sections import register_section
from pytest_collab.share.bundle import Bundle, import_bundle
from pytest_collab.share.bundle_config import lab_class, option_args, recorded_options
from pytest_collab.share.compare import Comparison, compare_frames, load_results
from pytest_collab.testcase import test_id

REPLAY_HTML = "replay.html"


@dataclass
class ReplayPlan:
    """What to run for a replay, and where its baseline is."""

    bundle_path: Path
    bundle: Bundle
    testcase_dir: Path
    baseline_dir: Path
    node_ids: list[str]
    option_args: list[str]
    code_written: bool

    @property
    def args(self) -> list[str]:
        """pytest arguments: options first, so the user's own flags after them still win."""
        return [*self.option_args, *self.node_ids]


@dataclass
class ReplayOutcome:
    plan: ReplayPlan
    comparison: Comparison
    baseline_lab: dict[str, str]
    replay_lab: dict[str, str]
    baseline_run: str
    replay_run: str
    missing: list[str] = field(default_factory=list)
    html: Path | None = None
    option_changes: list[str] = field(default_factory=list)

    @property
    def same_lab_class(self) -> bool:
        return self.baseline_lab["class"] == self.replay_lab["class"]

    @property
    def passed(self) -> bool:
        return self.comparison.passed and not self.missing

    def lab_note(self) -> str:
        """Which lab each run used; never left out, since labs change the numbers."""
        note = (f"baseline {self.baseline_run} on {self.baseline_lab['describe']}, "
                f"replay {self.replay_run} on {self.replay_lab['describe']}")
        if not self.same_lab_class:
            note += (f"; DIFFERENT lab classes ({self.baseline_lab['class']} vs "
                     f"{self.replay_lab['class']}): deltas include the lab difference")
        return note


def prepare_replay(bundle_path: Path, rootdir: Path, name: str | None = None,
                   force: bool = False) -> ReplayPlan:
    """Import the bundle into ``<rootdir>/testcases/`` and plan the pytest run."""
    imported = import_bundle(Path(bundle_path), Path(rootdir), name=name, force=force)
    bundle = imported.bundle
    rel = imported.testcase_dir.relative_to(Path(rootdir)).as_posix()
    node_ids = [f"{rel}/{test_id(nodeid, bundle.name)}" for nodeid in sorted(bundle.config.get("tests", {}))]
    return ReplayPlan(Path(bundle_path), bundle, imported.testcase_dir, imported.baseline_dir,
                      node_ids, option_args(bundle.config.get("options", {})), imported.code_written)


def finish_replay(plan: ReplayPlan, run_dir: Path) -> ReplayOutcome:
    """Compare the replay run in ``run_dir`` with the plan's baseline; write replay.html."""
    from pytest_collab.results.rundir import RunDir
    from pytest_collab.share.compare_render import write_html

    base, base_info = load_results(plan.baseline_dir)
    current, info = load_results(run_dir)
    name, here = plan.bundle.name, plan.testcase_dir.name
    if len(current):
        current = current[current["testcase"].isin({name, here})].copy()
        current["testcase"] = name  # imported under another name: still the same test case
    ran = {test_id(str(t), name) for t in current.get("test", [])}
    missing = [n for n in plan.node_ids if test_id(n, here) not in ran]
    cmp = compare_frames(base, base_info, current, info, plan.bundle.tolerances,
                         label_a=str(base_info.get("run_id")), label_b=str(info.get("run_id")))
    outcome = ReplayOutcome(plan, cmp, lab_class(base_info), lab_class(info),
                            str(base_info.get("run_id")), str(info.get("run_id")), missing,
                            option_changes=option_changes(plan.bundle.config.get("options") or {},
                                                          recorded_options(name, info)))
    run = RunDir(Path(run_dir))
    outcome.html = write_html(cmp, base, current, run.root / REPLAY_HTML,
                              notes=[outcome.lab_note(), f"bundle {plan.bundle_path}"])
    info["replay"] = summary(outcome)
    run.write_run_json(info)
    return outcome


def option_changes(baseline: dict[str, Any], replay: dict[str, Any]) -> list[str]:
    """Experiment options the replay ran with that differ from the baseline's (a flag the
    user gave on purpose, or a run that recorded none): said, never silent."""
    if not replay:
        return []
    return [f"{flag}: baseline {baseline.get(flag)!r}, replay {replay.get(flag)!r}"
            for flag in sorted(set(baseline) | set(replay)) if baseline.get(flag) != replay.get(flag)]


def summary(outcome: ReplayOutcome) -> dict[str, Any]:
    """The ``replay`` entry of run.json (what the report section shows)."""
    return {"bundle": str(outcome.plan.bundle_path), "passed": outcome.passed,
            "baseline_run": outcome.baseline_run, "baseline_lab": outcome.baseline_lab,
            "replay_lab": outcome.replay_lab, "note": outcome.lab_note(),
            "failed_metrics": outcome.comparison.failed_metrics, "missing_tests": outcome.missing,
            "tests": [{"test": f"{t.testcase}::{t.test}", "passed": t.passed, "failing": t.failing}
                      for t in outcome.comparison.tests],
            "html": REPLAY_HTML, "option_changes": outcome.option_changes}


def replay_lines(outcome: ReplayOutcome) -> list[str]:
    """The terminal summary: verdict, both labs, the delta table, what is missing."""
    from pytest_collab.share.compare_render import table_lines

    verdict = "PASS" if outcome.passed else "FAIL"
    why = ""
    if not outcome.passed:
        why = ": " + "; ".join(filter(None, [
            ("regressed " + ", ".join(outcome.comparison.failed_metrics)) if outcome.comparison.failed_metrics else "",
            ("not run " + ", ".join(outcome.missing)) if outcome.missing else ""]))
    lines = [f"collab replay of {outcome.plan.bundle_path}: {verdict}{why}",
             f"  baseline: run {outcome.baseline_run} on {outcome.baseline_lab['describe']}",
             f"  replay:   run {outcome.replay_run} on {outcome.replay_lab['describe']}"]
    if not outcome.same_lab_class:
        lines.append(f"  NOTE: different lab classes ({outcome.baseline_lab['class']} vs "
                     f"{outcome.replay_lab['class']}): deltas include the lab difference")
    lines.extend(f"  NOTE: option differs from the baseline: {c}" for c in outcome.option_changes)
    lines.extend("  " + line for line in table_lines(outcome.comparison)[1:])
    lines.extend(f"  not run in the replay: {n}" for n in outcome.missing)
    if outcome.html is not None:
        lines.append(f"  side by side: {outcome.html}")
    return lines


def _has_replay(results: Any, run_info: dict) -> bool:
    return isinstance(run_info.get("replay"), dict)


def _replay_section(results: Any, metrics: Any, run_info: dict) -> list:
    import html

    rep = run_info["replay"]
    rows = "".join(f"<tr><td>{html.escape(t['test'])}</td><td>{'pass' if t['passed'] else '<b>FAIL</b>'}</td>"
                   f"<td>{'<br>'.join(html.escape(f) for f in t['failing']) or '-'}</td></tr>"
                   for t in rep.get("tests", []))
    missing = "".join(f"<li>not run: {html.escape(m)}</li>" for m in rep.get("missing_tests", []))
    return [f"<p><b>{'PASS' if rep['passed'] else 'FAIL'}</b> against the baseline of bundle "
            f"{html.escape(rep['bundle'])}.</p><p class='note'>{html.escape(rep['note'])}</p>"
            f"<table class='data'><tr><th>test</th><th>outcome</th><th>failing metrics</th></tr>{rows}</table>"
            f"<ul>{missing}</ul><p>Every delta with figures side by side: "
            f"<a href='{rep['html']}'>{rep['html']}</a></p>"]


register_section("Replay against the bundle's baseline", _has_replay, _replay_section)
