"""``collab leases PROFILE``: which devices of a lab are held, by whom and since when."""
from __future__ import annotations

import argparse
from pathlib import Path


def cmd_leases(args: argparse.Namespace) -> int:
    """Show which devices of a profile are leased, and by whom."""
    import os

    from pytest_collab.lan.profile import load_profile
    from pytest_collab.leases import backend_for
    from pytest_collab.leases.core import list_from
    from pytest_collab.options import BY_NAME

    lan = load_profile(args.profile, Path(args.root))
    backend = backend_for(os.environ.get(BY_NAME["leases"].env), lan, Path(args.root))
    rows = list_from(backend, lan)
    print(f"leases of profile {lan.name!r} ({backend.where}):")
    for row in rows:
        owner = (f"{row.get('user')}@{row.get('host')} pid {row.get('pid')} run {row.get('run_id')} "
                 f"test {row.get('test')} since {row.get('since')}") if row["busy"] else "free"
        print(f"  {row['device']:<16} {row['kind']:<10} {owner}")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``leases`` to the ``collab`` parser."""
    leases = subparsers.add_parser("leases", help=cmd_leases.__doc__, description=cmd_leases.__doc__)
    leases.add_argument("profile", metavar="PROFILE", help="a profile name in network_profiles/ or a YAML path")
    leases.add_argument("--root", type=Path, default=Path("."), help="project root (default: .)")
    leases.set_defaults(func=cmd_leases)
