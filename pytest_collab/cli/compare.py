"""``collab compare RUN_A RUN_B [RUN ...]``: what changed between runs, with significance.

Two runs: every aligned row and metric, the second against the first (the baseline).
More runs: a trend table (each headline figure across the runs) and the last run judged
against the first with tolerances from the spread of the runs before it.
Exit codes follow the ``collab`` convention (see :mod:`pytest_collab.cli`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pytest_collab.cli import EXIT_FOUND_PROBLEMS, EXIT_OK, add_reports_dir
from pytest_collab.results.rundir import resolve_run_dir


def cmd_compare(args: argparse.Namespace) -> int:
    """Align the runs with the first (the baseline) and print the deltas; --gate exits 1 on regression."""
    from pytest_collab.cli.bundle import _tolerances
    from pytest_collab.share.bundle_config import lab_class
    from pytest_collab.share.compare import load_results
    from pytest_collab.share.compare_render import table_lines, trend_lines, write_html
    from pytest_collab.share.compare_trend import trend_frames

    if len(args.runs) < 2:
        from pytest_collab.errors import CollabError

        raise CollabError("compare needs at least two runs: RUN_A (the baseline) and RUN_B")
    runs = []
    for text in args.runs:
        run = resolve_run_dir(text, args.reports_dir)
        frame, info = load_results(run.root)
        runs.append((frame, info, str(info.get("run_id", run.run_id))))
    trend = trend_frames(runs, _tolerances(args.tolerances), all_metrics=args.all_metrics or len(runs) == 2)
    cmp = trend.comparison
    notes = [f"{'baseline ' if i == 0 else ''}{label} on {lab_class(info)['describe']}"
             for i, (_, info, label) in enumerate(runs)]
    lines = [*notes]
    if len(runs) > 2:
        lines += trend_lines(trend)
    lines += table_lines(cmp, changed_only=args.changed_only)
    print("\n".join(lines))
    if args.html:
        print(f"html: {write_html(cmp, runs[0][0], runs[-1][0], args.html, notes, trend if len(runs) > 2 else None)}")
    return EXIT_FOUND_PROBLEMS if args.gate and not cmp.passed else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command to the ``collab`` parser."""
    p = subparsers.add_parser("compare", help="compare runs' results (two, or a trend over N)",
                              description=cmd_compare.__doc__)
    p.add_argument("runs", metavar="RUN", nargs="+",
                   help="run folders, run ids or 'latest'; the first is the baseline, the last is judged")
    add_reports_dir(p)
    p.add_argument("--html", type=Path, default=None, metavar="FILE", help="also write a page with figures")
    p.add_argument("--tolerances", type=Path, default=None, metavar="FILE", help="JSON/YAML metric -> rule")
    p.add_argument("--changed-only", action="store_true", help="leave out metrics that did not change")
    p.add_argument("--all-metrics", action="store_true",
                   help="with more than two runs, trend every metric, not only the headline figures")
    p.add_argument("--gate", action="store_true", help="exit 1 when a metric is outside its tolerance")
    p.set_defaults(func=cmd_compare)
