"""The ``collab`` command (also ``python -m pytest_collab``).

Each sub-command group lives in its own module with a ``register(subparsers)`` function;
heavy imports happen inside the commands, so ``collab --help`` stays instant.

One convention for every command:

- options: the project root is ``--root DIR`` (:func:`add_root`), the folder of run
  folders ``--reports-dir DIR`` (:func:`add_reports_dir`);
- exit codes: 0 done; 1 done, and the answer is "no" (a gate failed, a device is
  unreachable); 2 could not do it (bad input, a missing run, usage: one line on stderr
  naming the command, no traceback); 130 interrupted; 141 the reader of our output went
  away (``collab ... | head``), silently.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Sequence

from pytest_collab import __version__
from pytest_collab.errors import CollabError
from pytest_collab.testcase import TESTCASES_DIR

EXIT_OK = 0
EXIT_FOUND_PROBLEMS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141   # 128 + SIGPIPE, what a shell reports for a tool killed by it

# Order is the order of `collab --help`.
GROUPS = ("lan", "facts", "remote", "images", "registry", "lab", "cleanup", "leases", "report", "bundle",
          "compare", "split", "dashboard")


def add_root(parser: argparse.ArgumentParser, what: str = f"the project root (holds {TESTCASES_DIR}/ and "
                                                           "network_profiles/)") -> None:
    """The one spelling of the project-root option."""
    parser.add_argument("--root", type=Path, default=Path("."), metavar="DIR", help=f"{what} (default: .)")


def add_reports_dir(parser: argparse.ArgumentParser) -> None:
    """The one spelling of the folder that holds run folders (ids and 'latest' are looked up there)."""
    from pytest_collab.results.rundir import DEFAULT_OUT_DIR

    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_OUT_DIR, metavar="DIR",
                        help=f"where run ids and 'latest' are looked up (default: {DEFAULT_OUT_DIR})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collab",
        description="pytest-collab: set up a lab of devices, inspect it, and work with run results.",
        epilog="exit codes: 0 done, 1 done with problems found (gate, unreachable device), "
               "2 error (bad input, usage), 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"pytest-collab {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for group in GROUPS:
        try:
            module = importlib.import_module(f"pytest_collab.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pytest_collab.cli.{group}":
                continue  # that group is not part of this installation
            raise
        module.register(subparsers)
    return parser


def _quiet_closed_pipe() -> int:
    """The reader left: point stdout at /dev/null so the interpreter's last flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_ERROR
    command = getattr(args, "command", None)
    name = f"collab {command}" if command else "collab"
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        return _quiet_closed_pipe()
    except CollabError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("collab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
