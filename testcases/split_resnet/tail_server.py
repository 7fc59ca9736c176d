"""Tail server (device program): load the tail artifact, warm up, print READY, serve.

    python tail_server.py --artifact /abs/tail.pt2 [--bind 127.0.0.1] [--port 0] [--warmup 3]
    python tail_server.py --sink            # no model: decode and checksum (benchmarks)
    python tail_server.py ... --heap-pad 0  # glibc's default heap (see heap.py for why not)

Needs numpy, torch, grpcio, blosc2 only. Readiness is the line ``READY port=<port>``,
printed only after the warm-up inferences, so the head client never measures a cold tail.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import heap  # noqa: E402
import tail_service  # noqa: E402


def load_tail(artifact: Path, threads: int | None):
    """Load the exported tail and its sidecar JSON; return (infer function, sidecar)."""
    import torch

    sidecar_path = artifact.with_suffix(".json")
    if not artifact.is_file() or not sidecar_path.is_file():
        raise SystemExit(f"tail_server: artifact {artifact} or its sidecar {sidecar_path.name} is missing; "
                         "the controller writes both (splitting.export_split)")
    if threads:
        torch.set_num_threads(threads)
    sidecar = json.loads(sidecar_path.read_text())
    module = torch.export.load(str(artifact)).module()

    def infer(arr: np.ndarray) -> np.ndarray:
        # An uncompressed fp32 tensor is a view of the received message (read-only): torch
        # warns on those, so only that case pays a copy, here in tail time, not transfer.
        arr = np.ascontiguousarray(arr) if arr.flags.writeable else np.array(arr)
        with torch.inference_mode():
            return module(torch.from_numpy(arr)).numpy()

    return infer, sidecar


def warm_up(infer, sidecar: dict, count: int) -> float:
    """Run ``count`` inferences on zeros of the tail's input shape; return seconds taken."""
    shape = [1, *sidecar["input_shape"]]
    x = np.zeros(shape, dtype=np.dtype(sidecar["input_dtype"]))
    t0 = time.perf_counter()
    for _ in range(count):
        infer(x)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", type=Path, help="tail .pt2 file written by the controller")
    ap.add_argument("--sink", action="store_true", help="no model: decode, checksum, reply")
    ap.add_argument("--no-checksum", action="store_true",
                    help="with --sink: reply without summing the tensor (throughput benchmarks)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port (default 0)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up inferences before READY (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads, 0 = torch's default")
    heap.add_option(ap)
    args = ap.parse_args(argv)
    if not args.sink and args.artifact is None:
        ap.error("--artifact is required unless --sink")

    heap_note = heap.keep_freed_heap(args.heap_pad)
    infer, warm_s = None, 0.0
    if not args.sink:
        infer, sidecar = load_tail(args.artifact, args.threads)
        warm_s = warm_up(infer, sidecar, args.warmup)

    def ready(port: int) -> None:
        print(heap_note, flush=True)
        print(f"warm-up: {args.warmup} inferences in {warm_s:.3f}s", flush=True)
        print(f"READY port={port}", flush=True)

    async def run() -> None:
        task = asyncio.ensure_future(tail_service.serve(infer, args.bind, args.port, ready, not args.no_checksum))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(run())
    print(f"tail_server: stopped (pid {os.getpid()})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
