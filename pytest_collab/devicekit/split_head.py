"""Generic head program: run any exported head, send its tensors to the tail, time it all.

    python -m collab_devicekit.split_head --artifact HEAD.pt2 --server HOST:PORT \\
        --inputs x.npy [--reference ref.npy] [--encoding int8] [--mode server --rate 20]

Without ``--artifact`` it is the full-offload baseline (sends the inputs as they are);
without ``--server`` it is the all-on-device baseline (the artifact is the whole model,
nothing is sent). Inputs: ``--inputs``, one ``.npy`` per head input with the samples on
axis 0, or seeded random ones shaped by the artifact's sidecar. Prints one
``COLLAB_RESULT {json}`` summary with per-query lists and the device's own timestamps.
Needs numpy, grpcio, blosc2, and torch when there is an artifact.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from . import heap
from .emit import emit
from .needs import require

PROGRAM = "split_head"
ENCODINGS = ("fp32", "fp16", "int8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m collab_devicekit.{PROGRAM}",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--artifact", type=Path, help="head .pt2 (+ its .json sidecar); absent = full offload")
    ap.add_argument("--server", help="tail server HOST:PORT; absent = all on device")
    ap.add_argument("--inputs", type=Path, nargs="+", help=".npy per head input, samples on axis 0")
    ap.add_argument("--reference", type=Path, help=".npy of the unsplit model's first output (fidelity)")
    ap.add_argument("--model", default="", help="label recorded with the results")
    ap.add_argument("--split", default="", help="label recorded with the results")
    ap.add_argument("--encoding", default="fp32", choices=ENCODINGS,
                    help="of floating boundary tensors; integer/bool ones go raw (default fp32)")
    ap.add_argument("--codec", default="zstd", help="blosc2 codec or none (default zstd)")
    ap.add_argument("--filter", default="shuffle", help="blosc2 filter (default shuffle)")
    ap.add_argument("--level", type=int, default=1, help="blosc2 level (default 1)")
    ap.add_argument("--samples", type=int, default=0, help="samples to use (default: all of --inputs, or 64)")
    ap.add_argument("--batch", type=int, default=1, help="samples per query (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of random inputs and the Poisson schedule")
    ap.add_argument("--mode", choices=("single", "server"), default="single")
    ap.add_argument("--rate", type=float, default=10.0, help="server mode: queries/s (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="server mode: queries in flight (default 2)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured queries first (default 3)")
    ap.add_argument("--think-ms", type=float, default=0.0,
                    help="single mode: idle this long before each query, in its latency but in none of "
                         "its stages (a wire probe whose sides idle like a split's; default 0)")
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--split-transport", default="auto", choices=("auto", "grpc", "tcp", "shm"),
                    help="what carries the tensors: auto (shared memory on one host, else a TCP data socket "
                         "beside gRPC, else the gRPC stream), or one of them (default auto)")
    heap.add_option(ap)
    ap.add_argument("--link-mbps", type=float, default=0.0,
                    help="link throughput in Mbit/s (link_baseline's throughput_mbps); 0 = measure it here")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, 0 = torch's default")
    ap.add_argument("--logits", action="store_true",
                    help="add the first output of every query to the row (logits_b64: float32, base64) "
                         "so the controller scores it; keep it small (the row is one line)")
    args = ap.parse_args(argv)
    if args.artifact is None and not args.inputs:
        ap.error("--inputs is required without --artifact (the sidecar shapes random inputs)")
    if args.artifact is None and args.server is None:
        ap.error("give --artifact, --server or both (neither runs nothing)")
    return args


def load_inputs(args: argparse.Namespace, head: Any) -> list[Any]:
    """One array per head input, samples on axis 0: the files, or seeded random data."""
    import numpy as np

    if args.inputs:
        arrays = [np.load(p) for p in args.inputs]
        if head is not None and len(arrays) != len(head.sidecar.inputs):
            raise SystemExit(f"{PROGRAM}: {len(arrays)} --inputs for a head that takes "
                             f"{len(head.sidecar.inputs)} ({', '.join(t.name for t in head.sidecar.inputs)})")
        if len({len(a) for a in arrays}) != 1:
            raise SystemExit(f"{PROGRAM}: --inputs hold different sample counts {[len(a) for a in arrays]}")
        n = args.samples or len(arrays[0])
        if n > len(arrays[0]):
            raise SystemExit(f"{PROGRAM}: --samples {n} but --inputs hold {len(arrays[0])}")
        return [a[:n] for a in arrays]
    rng = np.random.default_rng(args.seed)
    n = args.samples or 64
    out = []
    for t in head.sidecar.inputs:
        dt = np.dtype(t.dtype)
        shape = t.concrete(n)
        if dt.kind == "f":
            out.append(rng.standard_normal(shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.integers(0, 2, shape).astype(bool))
        else:
            out.append(rng.integers(0, 256 if dt == np.uint8 else 10, shape).astype(dt))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    needed = ["numpy"] + (["grpc", "blosc2"] if args.server else []) + (["torch"] if args.artifact else [])
    require(PROGRAM, *needed)
    import numpy as np

    from . import codec, loadgen
    from .exported import Exported
    from .head import Pipeline, fidelity, summarize_run

    print(heap.keep_freed_heap(args.heap_pad), flush=True)
    head = Exported(args.artifact, PROGRAM, args.threads) if args.artifact else None
    inputs = load_inputs(args, head)
    sent = (head.sidecar.output_dtypes() if head is not None
            else [(f"input{i}", a.dtype) for i, a in enumerate(inputs)])
    try:
        pipe = Pipeline(head, sent, args.server, args.encoding, codec.Compression(args.codec, args.filter, args.level),
                        args.topk, args.split_transport)
    except codec.CodecError as exc:
        raise SystemExit(f"{PROGRAM}: {exc}") from exc
    queries = [[a[s:s + args.batch] for a in inputs] for s in range(0, len(inputs[0]) - args.batch + 1, args.batch)]
    link_bps, link_source = args.link_mbps * 1e6 / 8, "link_baseline"
    if args.server and not link_bps:
        link_bps, link_source = pipe.client().measure_link(), "measured"
    elif not args.server:
        link_source = "none"
    for q in queries[: args.warmup]:
        pipe.query(q)

    def one(i: int) -> dict[str, Any]:
        if args.think_ms:
            time.sleep(args.think_ms / 1e3)
        return pipe.query(queries[i])

    if args.mode == "single":
        run = loadgen.run_single_stream(one, len(queries))
    else:
        schedule = loadgen.poisson_schedule(len(queries), args.rate, args.seed)
        run = loadgen.run_server(lambda i: pipe.query(queries[i]), schedule, args.workers)
    pipe.close()

    labels = {"model": args.model, "split": args.split, "mode": args.mode,
              "rate_qps": args.rate if args.mode == "server" else None}
    input_bytes = sum(a[:1].nbytes for a in inputs) * args.batch
    result = summarize_run(labels, pipe, run, args.batch, link_bps, link_source, input_bytes)
    if args.reference:
        result.update(fidelity([r["outputs"][0] for r in run.results], np.load(args.reference)))
    if args.logits:
        import base64

        got = np.ascontiguousarray(np.concatenate([r["outputs"][0] for r in run.results]), dtype=np.float32)
        result.update(logits_b64=base64.b64encode(got.tobytes()).decode(), logits_shape=list(got.shape))
    print(f"{args.model} {args.split} {pipe.encoding}: p50 {result['p50_ms']:.2f} ms, lower bound "
          f"{result['lower_bound_ms']:.2f} ms, wire {result['wire_bytes']} B", flush=True)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
