"""``collab report``, ``collab export`` and ``collab recover``: turn a finished run into
HTML or tables, or rebuild a crashed one.

Errors (no such run, a folder that is not a run) raise :class:`CollabError`; ``collab``
prints them as one line and exits 2 (see :mod:`pytest_collab.cli`).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from pytest_collab.cli import EXIT_OK, add_reports_dir
from pytest_collab.results.rundir import resolve_run_dir

EXPORT_FORMATS = ("csv", "xlsx", "json", "pickle", "parquet")
_RUN_HELP = "a run folder, a run id under --reports-dir, or 'latest'"


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=_RUN_HELP)
    add_reports_dir(parser)


def _on_run(args: argparse.Namespace, action: Callable[[Path], list[str]]) -> int:
    """Resolve RUN_DIR, run ``action`` on it and print its lines."""
    run = resolve_run_dir(args.run_dir, args.reports_dir)
    for line in action(run.root):
        print(line)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Render the run's HTML report and print its path."""
    from pytest_collab.report import render_report

    return _on_run(args, lambda root: [str(render_report(root, args.output))])


def cmd_export(args: argparse.Namespace) -> int:
    """Export the run's tables and print one written path per line."""
    from pytest_collab.report import export_run

    return _on_run(args, lambda root: [str(p) for p in export_run(root, args.format, args.output)])


def cmd_recover(args: argparse.Namespace) -> int:
    """Rebuild the Parquet files of a run whose controller died (from its raw logs and journals)."""
    from pytest_collab.results.recover import recover_run

    return _on_run(args, recover_run)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report``, ``export`` and ``recover`` sub-commands to the ``collab`` parser."""
    report = subparsers.add_parser("report", help="write the HTML report of a run",
                                   description=cmd_report.__doc__)
    _run_arguments(report)
    report.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="where to write the HTML (default: RUN_DIR/report.html)")
    report.set_defaults(func=cmd_report)

    export = subparsers.add_parser("export", help="export a run's metrics and results",
                                   description=cmd_export.__doc__)
    _run_arguments(export)
    export.add_argument("--format", "-f", required=True, choices=EXPORT_FORMATS,
                        help="output format")
    export.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                        help="output folder (default: RUN_DIR/export)")
    export.set_defaults(func=cmd_export)

    recover = subparsers.add_parser("recover", help="rebuild a crashed run's Parquet files",
                                    description=cmd_recover.__doc__)
    _run_arguments(recover)
    recover.set_defaults(func=cmd_recover)
