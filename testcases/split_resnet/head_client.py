"""Head client (device program): run the head, ship its tensor, time every step.

    python head_client.py --head /abs/head.pt2 --server HOST:PORT --encoding int8 \
        --reference /abs/ref.npy --samples 64 [--mode server --rate 20]

Without ``--head`` it is the full-offload baseline (sends the uint8 image); without
``--server`` it is the all-on-device baseline (sends nothing). Prints one summary line
``COLLAB_RESULT {json}`` with per-query sample lists. Needs numpy, torch, grpcio, blosc2.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import codec  # noqa: E402
import heap  # noqa: E402
import inputs  # noqa: E402
import loadgen  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", type=Path, help="head .pt2 artifact; absent = full offload")
    ap.add_argument("--server", help="tail server HOST:PORT; absent = all on device")
    ap.add_argument("--reference", type=Path, help=".npy logits of the unsplit model (fidelity)")
    ap.add_argument("--model", default="resnet18", help="label recorded with the results")
    ap.add_argument("--split", default="", help="label recorded with the results")
    ap.add_argument("--encoding", default="fp32", choices=codec.ENCODINGS)
    ap.add_argument("--codec", default=codec.DEFAULT_CODEC, help=f"blosc2 codec or none (default {codec.DEFAULT_CODEC})")
    ap.add_argument("--filter", default=codec.DEFAULT_FILTER, help=f"blosc2 filter (default {codec.DEFAULT_FILTER})")
    ap.add_argument("--level", type=int, default=codec.DEFAULT_LEVEL, help=f"blosc2 level (default {codec.DEFAULT_LEVEL})")
    ap.add_argument("--samples", type=int, default=64, help="images (default 64)")
    ap.add_argument("--batch", type=int, default=1, help="images per query (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="synthetic image seed (default 0)")
    ap.add_argument("--data", help="folder of images instead of synthetic ones")
    ap.add_argument("--mode", choices=("single", "server"), default="single")
    ap.add_argument("--rate", type=float, default=10.0, help="server mode: queries/s (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="server mode: queries in flight (default 2)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured queries first (default 3)")
    ap.add_argument("--topk", type=int, default=5)
    heap.add_option(ap)
    ap.add_argument("--link-mbps", type=float, default=0.0,
                    help="link throughput in Mbit/s (link_baseline's throughput_mbps); 0 = measure it here")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, 0 = torch's default")
    return ap.parse_args(argv)


class Pipeline:
    """Everything one query does on the device; thread-safe for server mode (a stream per thread)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.comp = codec.Compression(args.codec, args.filter, args.level)
        self.encoding = "none" if args.server is None else "raw" if args.head is None else args.encoding
        self.head = self._load_head(args.head) if args.head else None
        self._local = threading.local()
        self._clients: list[Any] = []

    def _load_head(self, path: Path):
        import torch

        if not path.is_file():
            raise SystemExit(f"head_client: head artifact {path} is missing; the controller writes it")
        if self.args.threads:
            torch.set_num_threads(self.args.threads)
        module = torch.export.load(str(path)).module()

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()

        return run

    def client(self):
        import wire

        c = getattr(self._local, "client", None)
        if c is None:
            c = self._local.client = wire.TensorClient(self.args.server)
            self._clients.append(c)
        return c

    def query(self, batch: np.ndarray) -> dict[str, Any]:
        t0 = time.perf_counter()
        act = self.head(batch) if self.head is not None else batch
        t1 = time.perf_counter()
        row: dict[str, Any] = {"head_s": t1 - t0, "raw_bytes": act.nbytes}
        if self.args.server is None:  # all on device: the head is the whole model
            row.update(encode_s=0.0, transfer_s=0.0, decode_s=0.0, tail_s=0.0, wire_bytes=0,
                       e2e_s=t1 - t0, logits=act)
            return row
        enc = codec.encode(act, self.encoding)
        data = codec.compress(enc.data, np.dtype(enc.meta["wire_dtype"]).itemsize, self.comp)
        t2 = time.perf_counter()
        reply = self.client().send(data, {**enc.meta, **self.comp.describe()}, self.args.topk, True)
        t3 = time.perf_counter()
        srv = reply.body["server"]
        decode = srv["decompress_s"] + srv["decode_s"]
        row.update(encode_s=t2 - t1, decode_s=decode, tail_s=srv["tail_s"],
                   transfer_s=max(0.0, reply.rpc_s - decode - srv["tail_s"]),
                   wire_bytes=len(data), e2e_s=t3 - t0, logits=reply.logits)
        return row

    def close(self) -> None:
        for c in self._clients:
            c.close()


def fidelity(logits: list[np.ndarray], reference: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and max |logit error| against the unsplit model on the same images."""
    got = np.concatenate(logits)
    ref = reference[: len(got)]
    if ref.shape != got.shape:
        raise SystemExit(f"--reference holds {reference.shape} logits, this run produced {got.shape}: "
                         "the controller must compute them for the same samples and batch")
    return {"top1_agreement": float(np.mean(got.argmax(1) == ref.argmax(1))),
            "max_abs_logit_error": float(np.max(np.abs(got - ref))) if got.size else 0.0}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(heap.keep_freed_heap(args.heap_pad), flush=True)
    images = inputs.load(args.samples, args.seed, args.data)
    queries = list(inputs.batches(images, args.batch))
    pipe = Pipeline(args)
    link_bps, link_source = args.link_mbps * 1e6 / 8, "link_baseline"
    if args.server and not link_bps:
        link_bps, link_source = pipe.client().measure_link(), "measured"
    elif not args.server:
        link_source = "none"
    for i in range(min(args.warmup, len(queries))):
        pipe.query(queries[i])

    rows: list[dict[str, Any]] = []
    t_wall = time.perf_counter()
    if args.mode == "single":
        lat, rows, _ = loadgen.run_single_stream(lambda i: pipe.query(queries[i]), len(queries))
    else:
        sched = loadgen.poisson_schedule(len(queries), args.rate, args.seed)
        lat, rows, _ = loadgen.run_server(lambda i: pipe.query(queries[i]), sched, args.workers)
    wall = time.perf_counter() - t_wall
    pipe.close()

    result = summarize_run(args, pipe.encoding, rows, lat, wall, link_bps, link_source, images[0].nbytes)
    if args.reference:
        result.update(fidelity([r["logits"] for r in rows], np.load(args.reference)))
    print(f"{args.model} {args.split} {pipe.encoding}: p50 {result['p50_ms']:.2f} ms, lower bound "
          f"{result['lower_bound_ms']:.2f} ms, wire {result['wire_bytes']} B", flush=True)
    print("COLLAB_RESULT " + json.dumps(result), flush=True)
    return 0


def summarize_run(args: argparse.Namespace, encoding: str, rows: list[dict[str, Any]], lat: list[float],
                  wall: float, link_bps: float, link_source: str, image_bytes: int) -> dict[str, Any]:
    """One flat record: labels, medians, loadgen summary, lower bound, per-query lists (ms)."""
    ms = {k: [r[f"{k}_s"] * 1e3 for r in rows] for k in ("head", "encode", "transfer", "decode", "tail", "e2e")}
    med = {f"{k}_ms_p50": float(np.median(v)) for k, v in ms.items()}
    wire_bytes = float(np.median([r["wire_bytes"] for r in rows]))
    raw_bytes = int(rows[0]["raw_bytes"]) if rows else 0
    bound = loadgen.lower_bound_s(med["head_ms_p50"] / 1e3, wire_bytes, link_bps, med["tail_ms_p50"] / 1e3)
    out: dict[str, Any] = {
        "model": args.model, "split": args.split, "encoding": encoding, "mode": args.mode,
        "rate_qps": args.rate if args.mode == "server" else None, "batch": args.batch,
        "codec": args.codec, "filter": args.filter, "level": args.level,
        "image_bytes": image_bytes * args.batch, "raw_bytes": raw_bytes, "wire_bytes": wire_bytes,
        "compression_ratio": raw_bytes / wire_bytes if wire_bytes else None,
        "link_MBps": link_bps / 1e6 if link_bps else None, "link_source": link_source,
        "lower_bound_ms": bound * 1e3,
        **loadgen.summarize(lat, wall, per_query=args.batch), **med,
        **{f"{k}_ms": v for k, v in ms.items()}, "latency_ms": [x * 1e3 for x in lat],
    }
    out["bound_ratio"] = out["p50_ms"] / out["lower_bound_ms"] if out["lower_bound_ms"] else None
    return out


if __name__ == "__main__":
    sys.exit(main())
