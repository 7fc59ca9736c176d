"""Generic tail program: load any exported tail, warm up, print READY, serve the wire.

    python -m collab_devicekit.split_tail --artifact TAIL.pt2 [--bind 127.0.0.1] [--port 0] [--warmup 3]
    python -m collab_devicekit.split_tail --sink   # no model: decode and checksum (benchmarks, tests)
    ... --heap-pad 0                              # glibc's default heap (see heap.py for why not)

The tail takes as many tensors as its sidecar lists (a cut inside a residual block sends
two or more) and replies with its outputs. Readiness is the line ``READY port=<port>``,
printed only after the warm-up inferences, so the head never measures a cold tail.
Needs numpy, grpcio, blosc2, and torch unless ``--sink``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import heap
from .needs import require

PROGRAM = "split_tail"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m collab_devicekit.{PROGRAM}",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--artifact", type=Path, help="tail .pt2 (+ its .json sidecar) written by the controller")
    ap.add_argument("--sink", action="store_true", help="no model: decode, checksum, reply")
    ap.add_argument("--no-checksum", action="store_true",
                    help="with --sink: reply without summing the tensors (throughput benchmarks)")
    ap.add_argument("--sink-hold-ms", type=float, default=0.0,
                    help="with --sink: hold each request this long, timed as its tail, and reply with no "
                         "outputs (a wire probe whose sides idle like a split's: split_plan's round trip)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port (default 0)")
    ap.add_argument("--data-port", type=int, default=0,
                    help="TCP port of the data plane beside gRPC (0 = any free one, -1 = gRPC only)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up inferences before READY (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads, 0 = torch's default")
    heap.add_option(ap)
    args = ap.parse_args(argv)
    if not args.sink and args.artifact is None:
        ap.error("--artifact is required unless --sink")
    if args.sink_hold_ms and not args.sink:
        ap.error("--sink-hold-ms goes with --sink")
    return args


def held(seconds: float) -> Any:
    """A tail that computes nothing for ``seconds`` (sleeping, so its device idles as it does
    while a head computes) and returns no outputs."""
    def infer(arrays: Any) -> list[Any]:
        time.sleep(seconds)
        return []

    return infer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require(PROGRAM, "numpy", "grpc", "blosc2", *([] if args.sink else ["torch"]))
    from . import tail_service
    from .exported import Exported

    heap_note = heap.keep_freed_heap(args.heap_pad)
    infer, warm_s = None, 0.0
    if args.sink_hold_ms:
        infer = held(args.sink_hold_ms / 1e3)
    elif not args.sink:
        infer = Exported(args.artifact, PROGRAM, args.threads)
        warm_s = tail_service.warm_up(infer, infer.zeros(1), args.warmup)

    def ready(port: int) -> None:
        print(heap_note, flush=True)
        print(f"warm-up: {args.warmup} inferences in {warm_s:.3f}s", flush=True)
        print(tail_service.READY.format(port=port), flush=True)

    tail_service.run_until_signalled(infer, args.bind, args.port, ready, not args.no_checksum,
                                     None if args.data_port < 0 else args.data_port)
    print(f"{PROGRAM}: stopped (pid {os.getpid()})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
