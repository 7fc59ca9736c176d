"""Render one run as a single self-contained ``report.html``.

Order (what a reader needs first): status and failures with their reasons; per
experiment its summary table (sortable) and its own figures; the generic sections;
then the tests, the run's details and the wide per-test result tables, collapsed.
Everything is inline (CSS, the vendored uPlot, figures as base64 PNG): the file can be
mailed, archived next to a paper, or opened offline years later.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from pytest_collab.errors import CollabWarning
from pytest_collab.report import tables
from pytest_collab.report.data import RunData, load_run
from pytest_collab.report.outcomes import counts
from pytest_collab.report.sections import Section, registered_sections
from pytest_collab.report.summary import run_summaries

_TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("pytest_collab.report", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)


def vendored_script() -> str:
    """uPlot's minified build without its banner comment (it holds the project's URL;
    the page makes no reference outside itself). Licence: templates/vendor/LICENSE-uPlot.txt."""
    text = (_TEMPLATES / "vendor" / "uPlot.iife.min.js").read_text(encoding="utf-8")
    if text.startswith("/*!"):
        text = text[text.index("*/") + 2:].lstrip()
    return text


def _item(item: Any) -> dict[str, Any]:
    """A section item (Chart, Figure, HTML text or DataFrame) as template data."""
    from markupsafe import Markup

    from pytest_collab.report.charts import Chart
    from pytest_collab.report.figures import to_data_uri

    if isinstance(item, Chart):
        return {"chart": Markup(json.dumps(item.spec(), separators=(",", ":")).replace("</", "<\\/")),
                "alt": item.title, "half": item.half}
    if hasattr(item, "savefig"):
        title = item.get_suptitle() or (item.axes[0].get_title() if item.axes else "")
        return {"img": to_data_uri(item), "alt": title or "figure"}
    if hasattr(item, "to_html"):
        return {"html": Markup(item.to_html(index=False, border=0, classes="data", na_rep=""))}
    return {"html": Markup(str(item))}


def _render_section(section: Section, run: RunData) -> dict[str, Any] | None:
    """Items of one section; its failure becomes a visible note, not a lost report."""
    try:
        if not section.predicate(run.results, run.info):
            return None
        items = [_item(i) for i in section.render(run.results, run.metrics, run.info)]
    except Exception as exc:  # noqa: BLE001  (an experiment's section must not sink the report)
        warnings.warn(CollabWarning(f"report section {section.name!r} failed: {exc!r}"),
                      stacklevel=2)
        return {"name": section.name, "error": f"{type(exc).__name__}: {exc}", "items": []}
    return {"name": section.name, "items": items} if items else None


def build_context(run: RunData) -> dict[str, Any]:
    from pytest_collab.report.builtin import BUILTIN_SECTIONS

    info = run.info
    outcomes, found = run_summaries(run)
    registered = registered_sections()
    experiments: list[dict[str, Any]] = []
    for summary in found:
        own = [_render_section(s, run) for s in registered if s.testcase == summary.testcase]
        experiments.append({"summary": summary, "sections": [s for s in own if s]})
    shown = {e["summary"].testcase for e in experiments}
    generic = [s for s in registered if s.testcase not in shown]
    sections = [_render_section(s, run) for s in [*generic, *BUILTIN_SECTIONS]]
    return {
        "run_id": info.get("run_id", run.run.run_id),
        "status": tables.status_line(info, counts(outcomes)),
        "problems": [o for o in outcomes if o.is_problem],
        "experiments": experiments,
        "overview": tables.overview_table(info, run.run.run_id),
        "devices": tables.devices_table(info),
        "versions": tables.versions_table(info),
        "tests": tables.tests_table(outcomes),
        "results": tables.results_tables(run.results),
        "sections": [s for s in sections if s],
        "notes": run.notes,
        "metrics_rows": len(run.metrics),
        "uplot_js": vendored_script(),
        "charts_js": (_TEMPLATES / "charts.js").read_text(encoding="utf-8"),
        "uplot_css": (_TEMPLATES / "vendor" / "uPlot.min.css").read_text(encoding="utf-8"),
    }


def render_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``<run>/report.html``)."""
    run = load_run(run_dir)
    out = Path(out) if out is not None else run.run.report_html
    html = _environment().get_template("report.html.j2").render(**build_context(run))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out
