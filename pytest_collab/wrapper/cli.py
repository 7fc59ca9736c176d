"""Command line of the wrapper:
``[--hz 10] [--grace 5] [--no-stdin-watch] [--heartbeat S] [--power-meter JSON] -- PROGRAM ARGS...``."""
from __future__ import annotations

import argparse
import json
from typing import List, Optional

from . import meter
from .runner import Runner


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m collab_wrapper",
        description="Run PROGRAM, forward its output and sample its process tree as JSON Lines.")
    parser.add_argument("--hz", type=float, default=10.0,
                        help="samples per second (default: 10)")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="seconds between SIGTERM and SIGKILL when ending the tree (default: 5)")
    parser.add_argument("--no-stdin-watch", dest="stdin_watch", action="store_false",
                        help="do not end the tree when the wrapper's stdin (a pipe) reaches EOF")
    parser.add_argument("--heartbeat", type=float, default=None, metavar="SECONDS",
                        help="end the tree when nothing arrives on stdin for SECONDS (the "
                             "controller writes a newline regularly; over SSH a cut link gives "
                             "no EOF) (default: off)")
    parser.add_argument("--net-scope", choices=("auto", "host", "netns"), default="auto",
                        help="whether the program has its own network namespace; 'auto' "
                             "compares namespaces, a container runtime may know better (default: auto)")
    parser.add_argument("--power-meter", metavar="JSON", default=None,
                        help="an external power meter, as the profile's power_meter mapping: "
                             "'{\"command\": \"CMD\"}' (prints watts) or '{\"serial\": "
                             "\"/dev/ttyUSB0\"}' (docs/energy.md) (default: none)")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    args = parser.parse_args(argv)
    if args.program[:1] == ["--"]:
        args.program = args.program[1:]
    if not args.program:
        parser.error("no program given: use -- PROGRAM ARGS...")
    if not args.hz > 0 or args.grace < 0 or (args.heartbeat is not None and not args.heartbeat > 0):
        parser.error("--hz and --heartbeat must be > 0 and --grace >= 0")
    if args.power_meter is not None:
        try:
            args.power_meter = meter.check(json.loads(args.power_meter))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            parser.error("--power-meter: %s" % exc)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return Runner(args.program, hz=args.hz, grace=args.grace, stdin_watch=args.stdin_watch,
                  net_scope=args.net_scope, heartbeat=args.heartbeat, power_meter=args.power_meter).run()
