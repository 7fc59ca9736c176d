"""``collab cleanup [--run-id RUN]``: remove containers and networks left by crashed runs."""
from __future__ import annotations

import argparse


def _cleanup(args: argparse.Namespace) -> int:
    from pytest_collab.containers.engines import local_client
    from pytest_collab.runtime.labels import sweep

    result = sweep(local_client(), args.run_id, progress=print)
    print(f"removed {len(result.removed)}, kept {len(result.kept)} (controller alive or another host's)")
    for problem in result.problems:
        print(f"problem: {problem}")
    return 1 if result.problems else 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``cleanup`` to the ``collab`` parser."""
    clean = subparsers.add_parser("cleanup", help="remove containers left by crashed runs (by label)")
    clean.add_argument("--run-id", metavar="RUN", help="remove this run's containers, alive or not "
                                                       "(default: every run whose controller is gone)")
    clean.set_defaults(func=_cleanup)
