"""The ``collab`` command (also ``python -m pytest_collab``).

Each sub-command group lives in its own module with a ``register(subparsers)`` function;
heavy imports happen inside the commands, so ``collab --help`` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from pytest_collab import __version__
from pytest_collab.errors import CollabError

# Order is the order of `collab --help`.
GROUPS = ("lan", "facts", "remote", "images", "registry", "lab", "report", "bundle", "compare", "split")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collab",
        description="pytest-collab: set up a lab of devices, inspect it, and work with run results.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-collab {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in GROUPS:
        try:
            module = importlib.import_module(f"pytest_collab.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pytest_collab.cli.{group}":
                continue  # that group is not part of this installation
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CollabError as exc:
        print(f"collab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("collab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
