"""``collab report``: one self-contained HTML page per run, and exports of its data.

Imported only lazily (by the plugin at session end, or by the CLI); the heavy imports
(pandas, matplotlib, Jinja2) happen inside the modules' functions. Experiments declare
their headline and add their own figures through :mod:`pytest_collab.report.sections`
(see docs/report.md); :mod:`.terminal` and :mod:`.pytest_output` carry the headline
into pytest's terminal, JUnit XML and pytest-html.
"""
from __future__ import annotations

from pathlib import Path

from pytest_collab.report.sections import register_section  # stdlib only: cheap

__all__ = ["export_run", "register_section", "render_report"]


def render_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the run's ``report.html`` (or ``out``); see :mod:`.html`."""
    from pytest_collab.report.html import render_report as render

    return render(run_dir, out)


def export_run(run_dir: Path, fmt: str, out_dir: Path | None = None) -> list[Path]:
    """Export the run's tables as ``fmt``; see :mod:`.exports`."""
    from pytest_collab.report.exports import export_run as export

    return export(run_dir, fmt, out_dir)
