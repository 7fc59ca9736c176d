"""``collab report`` and ``collab export``: turn a finished run into HTML or tables.

The integrator's ``pytest_collab/cli/__init__.py`` calls :func:`register`; each command
sets ``func(args) -> int`` (0 on success, 1 with a one-line error on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from pytest_collab.errors import CollabError
from pytest_collab.results.rundir import DEFAULT_OUT_DIR, resolve_run_dir

EXPORT_FORMATS = ("csv", "xlsx", "json", "pickle", "parquet")
_RUN_HELP = "a run folder, a run id under --reports-dir, or 'latest'"


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=_RUN_HELP)
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"where run ids and 'latest' are looked up (default: {DEFAULT_OUT_DIR})")


def _on_run(args: argparse.Namespace, command: str, action: Callable[[Path], list[str]]) -> int:
    """Resolve RUN_DIR, run ``action`` on it and print its lines; a CollabError is one line."""
    try:
        run = resolve_run_dir(args.run_dir, args.reports_dir)
        lines = action(run.root)
    except CollabError as exc:
        print(f"collab {command}: error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render the run's HTML report and print its path."""
    from pytest_collab.report import render_report

    return _on_run(args, "report", lambda root: [str(render_report(root, args.output))])


def cmd_export(args: argparse.Namespace) -> int:
    """Export the run's tables and print one written path per line."""
    from pytest_collab.report import export_run

    return _on_run(args, "export", lambda root: [str(p) for p in export_run(root, args.format, args.output)])


def cmd_recover(args: argparse.Namespace) -> int:
    """Rebuild the Parquet files of a run whose controller died (from its raw logs and journals)."""
    from pytest_collab.results.recover import recover_run

    return _on_run(args, "recover", recover_run)


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
