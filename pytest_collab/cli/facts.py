"""``collab facts PROFILE``: gather every device's facts, store them in the profile (with
the time they were taken), and export the inventory as html, csv, json, markdown or sql,
or as the per-host tree of ``ansible -m setup --tree DIR`` (``--tree DIR``) that
ansible-cmdb renders.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_collab.cli.lan import connector, load_lan, save_lan, targets
from pytest_collab.lan.profile import ReadOnlyProfile


def cmd_facts(args: argparse.Namespace) -> int:
    from pytest_collab.lan import facts, facts_export
    lan = load_lan(args.profile)
    devices = targets(lan, args.target)
    errors: dict[str, str] = {}
    if not args.no_gather:
        outcomes = facts.gather_many(devices, connect=connector(lan), timeout=args.timeout)
        for device in devices:
            outcome = outcomes[device.name]
            if outcome.ok:
                facts.apply(device, outcome.value)
            else:
                errors[device.name] = str(outcome.error)
                print(f"warning: {device.name}: {outcome.error} (its old facts are kept)",
                      file=sys.stderr)
        try:
            save_lan(lan)
        except ReadOnlyProfile as exc:  # e.g. `collab facts local`: show them, change no shared file
            print(f"note: facts not saved: {exc}", file=sys.stderr)
    if args.tree:
        written = facts_export.write_tree(devices, Path(args.tree), errors)
        print(f"wrote {len(written)} host file(s) to {args.tree} (render: ansible-cmdb {args.tree})",
              file=sys.stderr)
    if args.cmdb_columns:
        Path(args.cmdb_columns).write_text(facts_export.cmdb_columns(), encoding="utf-8")
        print(f"wrote {args.cmdb_columns} (use: ansible-cmdb -C {args.cmdb_columns} DIR)", file=sys.stderr)
    if args.export or args.output or not args.tree:
        columns = args.columns.split(",") if args.columns else None
        exclude = args.exclude.split(",") if args.exclude else ()
        text = facts_export.export(devices, args.export or "markdown", columns=columns, exclude=exclude,
                                   title=f"{lan.name} devices")
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return 1 if errors else 0


def register(subparsers: Any) -> None:
    from pytest_collab.lan.facts_export import FORMATS
    p = subparsers.add_parser("facts", help="gather device facts and export the inventory")
    p.add_argument("profile")
    p.add_argument("target", nargs="?", help="device, kind or tag (default: all)")
    p.add_argument("--export", choices=FORMATS,
                   help="output format (default: markdown, none with --tree alone)")
    p.add_argument("--tree", metavar="DIR",
                   help="also write one file per device as `ansible -m setup --tree DIR` does "
                        "(render it with ansible-cmdb DIR)")
    p.add_argument("--cmdb-columns", metavar="FILE",
                   help="also write ansible-cmdb custom columns for collab's facts (board, JetPack, "
                        "GPUs, ...): ansible-cmdb -C FILE DIR; keep FILE outside DIR")
    p.add_argument("--columns", help="comma-separated aliases (name,os,ip,mem,cpus,...) or "
                                     "fact names (ansible_default_ipv4.address)")
    p.add_argument("--exclude", help="comma-separated columns to leave out")
    p.add_argument("--output", "-o", help="file (default: stdout)")
    p.add_argument("--no-gather", action="store_true", help="export the stored facts only")
    p.add_argument("--timeout", type=float, default=60, help="per device (default 60s)")
    p.set_defaults(func=cmd_facts)
