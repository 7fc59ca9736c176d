"""``collab compare RUN_A RUN_B``: what changed between two runs, with significance."""
from __future__ import annotations

import argparse
from pathlib import Path

from pytest_collab.results.rundir import DEFAULT_OUT_DIR, resolve_run_dir


def cmd_compare(args: argparse.Namespace) -> int:
    """Align RUN_B with RUN_A (the baseline) and print the deltas; --gate exits 1 on regression."""
    from pytest_collab.cli.bundle import _tolerances
    from pytest_collab.share.bundle_config import lab_class
    from pytest_collab.share.compare import compare_frames, load_results
    from pytest_collab.share.compare_render import table_lines, write_html

    run_a = resolve_run_dir(args.run_a, args.reports_dir)
    run_b = resolve_run_dir(args.run_b, args.reports_dir)
    a, info_a = load_results(run_a.root)
    b, info_b = load_results(run_b.root)
    cmp = compare_frames(a, info_a, b, info_b, _tolerances(args.tolerances),
                         label_a=str(info_a.get("run_id", run_a.run_id)),
                         label_b=str(info_b.get("run_id", run_b.run_id)))
    notes = [f"baseline {cmp.label_a} on {lab_class(info_a)['describe']}; "
             f"{cmp.label_b} on {lab_class(info_b)['describe']}"]
    print("\n".join([*notes, *table_lines(cmp, changed_only=args.changed_only)]))
    if args.html:
        print(f"html: {write_html(cmp, a, b, args.html, notes)}")
    return 1 if args.gate and not cmp.passed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command to the ``collab`` parser."""
    p = subparsers.add_parser("compare", help="compare two runs' results", description=cmd_compare.__doc__)
    p.add_argument("run_a", metavar="RUN_A", help="baseline: a run folder, a run id, or 'latest'")
    p.add_argument("run_b", metavar="RUN_B", help="the run compared with it")
    p.add_argument("--reports-dir", type=Path, default=DEFAULT_OUT_DIR,
                   help=f"where run ids and 'latest' are looked up (default: {DEFAULT_OUT_DIR})")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write a page with side-by-side figures")
    p.add_argument("--tolerances", type=Path, default=None, metavar="FILE", help="JSON/YAML metric -> rule")
    p.add_argument("--changed-only", action="store_true", help="leave out metrics that did not change")
    p.add_argument("--gate", action="store_true", help="exit 1 when a metric is outside its tolerance")
    p.set_defaults(func=cmd_compare)
