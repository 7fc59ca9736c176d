"""Show a :class:`~pytest_collab.share.compare.Comparison`: a terminal table and an HTML page.

Kept apart from the arithmetic so the terminal path never imports matplotlib; the
HTML fragment (:func:`section_html`) is what the run report includes, the page
(:func:`write_html`) is what ``collab compare --html`` writes.
"""
from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.share.compare import Comparison, MetricDelta, RowDelta, describe_tolerance

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from pytest_collab.share.compare_trend import Trend

MAX_FIGURES = 8
_HEAD = ("test", "row", "metric", "baseline", "current", "delta", "p", "verdict", "tolerance", "")


def _cells(row: RowDelta, m: MetricDelta) -> list[str]:
    rel = "-" if m.relative is None else ("inf" if math.isinf(m.relative) else f"{m.relative:+.1%}")
    return [row.test, row.label(), m.metric, _num(m.baseline), _num(m.current), rel,
            "-" if m.p_value is None else f"{m.p_value:.2g}", m.verdict,
            describe_tolerance(m.tolerance), "FAIL" if m.failed else "ok"]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def table_lines(cmp: Comparison, changed_only: bool = False) -> list[str]:
    """The deltas as an aligned text table, then unmatched rows and one line per test."""
    body = [_cells(r, m) for r in cmp.rows for m in r.metrics
            if not changed_only or m.failed or m.verdict not in ("same",)]
    widths = [max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(_HEAD)]
    lines = [f"compare {cmp.label_b} against baseline {cmp.label_a}"]
    for cells in [list(_HEAD), *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    lines.extend(unmatched_lines(cmp))
    for t in cmp.tests:
        lines.append(f"{'PASS' if t.passed else 'FAIL'} {t.testcase}::{t.test}")
        lines.extend(f"    {f}" for f in t.failing)
    return lines


def unmatched_lines(cmp: Comparison) -> list[str]:
    lines = []
    for label, rows in ((f"only in {cmp.label_a} (baseline)", cmp.only_a),
                        (f"only in {cmp.label_b}", cmp.only_b)):
        for row in rows:
            rest = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("testcase", "test"))
            lines.append(f"{label}: {row['testcase']}::{row['test']} {rest}".rstrip())
    return lines


def _figure(metric: str, cmp: Comparison, a: pandas.DataFrame, b: pandas.DataFrame) -> Any:
    """Baseline and current side by side (same y axis): bars, or box plots for samples."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pytest_collab.report.figures import new_figure  # noqa: F401  (same Agg set-up)

    fig = Figure(figsize=(10, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, frame, label in ((axes[0], a, f"baseline {cmp.label_a}"), (axes[1], b, cmp.label_b)):
        ax.set_title(label, fontsize=9)
        if metric not in frame.columns:
            continue
        names, values = [], []
        records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
        for rec in records:
            value = rec.get(metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            names.append(_short(rec))
            values.append(value)
        if values and hasattr(values[0], "__len__"):
            ax.boxplot([list(v) for v in values], showfliers=False)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=7)
        elif values:
            ax.bar(range(len(values)), [float(v) for v in values])
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    axes[0].set_ylabel(metric)
    fig.suptitle(metric)
    return fig


def _short(rec: dict[str, Any]) -> str:
    test = str(rec.get("test", "")).rsplit("::", 1)[-1]
    extra = [str(rec[k]) for k in ("size_bytes", "split", "round") if k in rec and rec[k] is not None]
    return " ".join([test, *extra])


# ---------------------------------------------------------------- N runs
def _verdicts(trend: Trend) -> dict[tuple, MetricDelta]:
    return {(r.test, r.label(), m.metric): m for r in trend.comparison.rows for m in r.metrics}


def trend_cells(trend: Trend) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the trend table: one column per run, then last against first."""
    verdicts = _verdicts(trend)
    header = ["test", "row", "metric", *(f"#{i + 1}" for i in range(len(trend.labels))),
              "last vs #1", "verdict", "tolerance"]
    body = []
    for row in trend.rows:
        m = verdicts.get((row.test, row.label(), row.metric))
        rel = "-" if m is None or m.relative is None else (
            "inf" if math.isinf(m.relative) else f"{m.relative:+.1%}")
        verdict = "-" if m is None else (m.verdict + (" FAIL" if m.failed else ""))
        body.append([row.test, row.label(), row.metric, *(_num(v) for v in row.values), rel, verdict,
                     "-" if m is None else describe_tolerance(m.tolerance)])
    return header, body


def trend_lines(trend: Trend) -> list[str]:
    """The trend as an aligned text table, with the run ids the columns stand for."""
    header, body = trend_cells(trend)
    widths = [max([len(h), *(len(c[i]) for c in body)]) for i, h in enumerate(header)]
    lines = [f"#{i + 1} = {label}" for i, label in enumerate(trend.labels)]
    for cells in [header, *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return lines


def trend_figure(trend: Trend, metric: str) -> Any:
    """One metric across the runs, a line per row (distinct colours past ten, legend beside)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pytest_collab.report.charts import KELLY, TABLEAU

    rows = [r for r in trend.rows if r.metric == metric]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colours = TABLEAU if len(rows) <= len(TABLEAU) else KELLY  # the report's palette: distinct past ten
    x = list(range(1, len(trend.labels) + 1))
    for i, row in enumerate(rows):
        colour = colours[i % len(colours)]
        ax.plot(x, [float("nan") if v is None else v for v in row.values], marker="o",
                label=f"{row.test.rsplit('::', 1)[-1]} {row.label()}", color=colour,
                linestyle="-" if i < len(colours) else "--")
    ax.set_xticks(x, [f"#{i}" for i in x])
    ax.set_xlabel("run (see the table for ids)")
    better = rows[0].direction if rows else None
    ax.set_ylabel(metric + (f" ({better} is better)" if better else ""))
    ax.grid(alpha=0.3)
    ax.set_title(f"{metric} across {len(trend.labels)} runs")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def trend_html(trend: Trend) -> str:
    """The trend table and one figure per metric (the first MAX_FIGURES)."""
    from pytest_collab.report.figures import to_data_uri

    e = html.escape
    header, body = trend_cells(trend)
    parts = ["<h2>Across the runs</h2><ul>"] + [f"<li>#{i + 1}: {e(label)}</li>" for i, label in
                                                 enumerate(trend.labels)] + ["</ul>"]
    parts.append("<table class='data'><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
    for cells in body:
        cls = " class='fail'" if cells[-2].endswith("FAIL") else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    for metric in list(dict.fromkeys(r.metric for r in trend.rows))[:MAX_FIGURES]:
        parts.append(f"<figure><img alt='{e(metric)}' src='{to_data_uri(trend_figure(trend, metric))}'></figure>")
    return "\n".join(parts)


def section_html(cmp: Comparison, a: pandas.DataFrame, b: pandas.DataFrame,
                 notes: list[str] | None = None) -> str:
    """An HTML fragment: notes (lab classes!), per-test outcome, delta table, figures."""
    from pytest_collab.report.figures import to_data_uri

    e = html.escape
    parts = [f"<p class='note'>{e(n)}</p>" for n in notes or []]
    parts.append("<table class='data'><tr><th>test</th><th>outcome</th><th>failing metrics</th></tr>")
    for t in cmp.tests:
        parts.append(f"<tr><td>{e(t.testcase)}::{e(t.test)}</td><td>{'pass' if t.passed else '<b>FAIL</b>'}</td>"
                     f"<td>{'<br>'.join(e(f) for f in t.failing) or '-'}</td></tr>")
    parts.append("</table>")
    unmatched = unmatched_lines(cmp)
    if unmatched:
        parts.append("<p>Unmatched rows:</p><ul>" + "".join(f"<li>{e(u)}</li>" for u in unmatched) + "</ul>")
    parts.append("<table class='data'><tr>" + "".join(f"<th>{e(h)}</th>" for h in _HEAD) + "</tr>")
    for row in cmp.rows:
        for m in row.metrics:
            cls = " class='fail'" if m.failed else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in _cells(row, m)) + "</tr>")
    parts.append("</table>")
    ranked = sorted({m.metric: m for r in cmp.rows for m in r.metrics}.values(),
                    key=lambda m: (not m.failed, m.verdict != "worse", m.metric))
    for m in ranked[:MAX_FIGURES]:
        fig = _figure(m.metric, cmp, a, b)
        parts.append(f"<figure><img alt='{e(m.metric)}' src='{to_data_uri(fig)}'></figure>")
    return "\n".join(parts)


def write_html(cmp: Comparison, a: pandas.DataFrame, b: pandas.DataFrame, out: Path,
               notes: list[str] | None = None, trend: Trend | None = None) -> Path:
    """A self-contained page with :func:`section_html` (and the trend of N runs)."""
    css_path = Path(__file__).parent.parent / "report" / "templates" / "report.css"
    css = css_path.read_text(encoding="utf-8") if css_path.is_file() else ""
    title = f"pytest-collab: {cmp.label_b} vs baseline {cmp.label_a}"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{css}\ntr.fail td{{background:#fdd}}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<h2>{'PASS' if cmp.passed else 'FAIL: ' + html.escape(', '.join(cmp.failed_metrics))}</h2>"
            f"{trend_html(trend) if trend is not None else ''}"
            f"{section_html(cmp, a, b, notes)}</body></html>\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
