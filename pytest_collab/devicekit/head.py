"""The head device's work per query, and the one summary row a head program reports.

A :class:`Pipeline` runs the head artifact (or nothing: full offload sends the inputs),
encodes and compresses each boundary tensor, sends them in one request and times every
step; without a server it is the all-on-device baseline. Thread-safe for server mode
(a stream per thread). Needs numpy, grpcio, blosc2, and torch when there is a head.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from . import codec, stats
from .loadgen import Run

STAGES = ("head", "encode", "transfer", "decode", "tail", "e2e")
Head = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


class Pipeline:
    """Everything one query does on the head device."""

    def __init__(self, head: Head | None, boundary: Sequence[tuple[str, str]], server: str | None,
                 encoding: str, comp: codec.Compression, topk: int = 5, transport: str = "auto") -> None:
        """``boundary``: ``(name, dtype)`` of each tensor sent (the head's outputs, or the
        inputs when there is no head), in order; their encodings are fixed here, so a dtype
        the codec cannot carry fails before the first query. ``transport``: what
        wire.TensorClient negotiates (auto, grpc, tcp, shm); :attr:`transport` becomes the one
        that carries the tensors ("none" without a server)."""
        self.head, self.server, self.comp, self.topk = head, server, comp, topk
        self.want, self.transport = transport, "none" if server is None else transport
        self.encoding = "none" if server is None else "raw" if head is None else encoding
        self.encodings = codec.plan(boundary, self.encoding) if server is not None else []
        self._local = threading.local()
        self._clients: list[Any] = []

    def client(self) -> Any:
        """This thread's stream to the tail (opened on first use)."""
        from .wire import TensorClient

        c = getattr(self._local, "client", None)
        if c is None:
            assert self.server is not None
            c = self._local.client = TensorClient(self.server, transport=self.want)
            self._clients.append(c)
            self.transport = c.transport
        return c

    def query(self, batch: Sequence[np.ndarray]) -> dict[str, Any]:
        """Run one query on ``batch`` (one array per head input); the per-stage seconds."""
        t0 = time.perf_counter()
        acts = self.head(batch) if self.head is not None else list(batch)
        t1 = time.perf_counter()
        row: dict[str, Any] = {"head_s": t1 - t0, "raw_bytes": sum(a.nbytes for a in acts)}
        if self.server is None:  # all on device: the head is the whole model
            row.update(encode_s=0.0, transfer_s=0.0, decode_s=0.0, tail_s=0.0, wire_bytes=0,
                       e2e_s=t1 - t0, outputs=acts)
            return row
        parts = codec.pack_all(acts, self.encodings, self.comp)
        t2 = time.perf_counter()
        reply = self.client().send(parts, self.topk, True)
        t3 = time.perf_counter()
        srv = reply.body["server"]
        decode = srv["decompress_s"] + srv["decode_s"]
        row.update(encode_s=t2 - t1, decode_s=decode, tail_s=srv["tail_s"],
                   transfer_s=max(0.0, reply.rpc_s - decode - srv["tail_s"]),
                   wire_bytes=sum(len(d) for d, _ in parts), e2e_s=t3 - t0, outputs=reply.outputs,
                   tail_t_start=srv.get("t_start"), tail_t_end=srv.get("t_end"))
        return row

    def close(self) -> None:
        for c in self._clients:
            c.close()


def fidelity(outputs: list[np.ndarray], reference: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and max |logit error| of the first output against the unsplit model
    on the same samples (and batch size: kernels differ in the last bits between batches)."""
    got = np.concatenate(outputs)
    ref = reference[: len(got)]
    if ref.shape != got.shape:
        raise SystemExit(f"--reference holds {reference.shape} outputs, this run produced {got.shape}: "
                         "the controller must compute them for the same samples and batch")
    top1 = got.argmax(-1) == ref.argmax(-1) if got.ndim > 1 else got == ref
    return {"top1_agreement": float(np.mean(top1)),
            "max_abs_logit_error": float(np.max(np.abs(got.astype(np.float64) - ref))) if got.size else 0.0}


def summarize_run(labels: dict[str, Any], pipe: Pipeline, run: Run, batch: int, link_bps: float,
                  link_source: str, input_bytes: int) -> dict[str, Any]:
    """One flat record: labels, medians, the LoadGen summary, the lower bound, and per-query
    lists (ms, and the device's epoch timestamps ``t_start``/``t_end``)."""
    rows = run.results
    ms = {k: [r[f"{k}_s"] * 1e3 for r in rows] for k in STAGES}
    med = {f"{k}_ms_p50": stats.median(v) if v else float("nan") for k, v in ms.items()}
    wire_bytes = stats.median(r["wire_bytes"] for r in rows) if rows else 0.0
    raw_bytes = int(rows[0]["raw_bytes"]) if rows else 0
    bound = stats.lower_bound_s(med["head_ms_p50"] / 1e3, wire_bytes, link_bps, med["tail_ms_p50"] / 1e3)
    out: dict[str, Any] = {
        **labels, "encoding": pipe.encoding, "transport": pipe.transport, "boundary_tensors": len(pipe.encodings),
        "tensor_encodings": ",".join(pipe.encodings),
        "batch": batch, **pipe.comp.describe(),
        "image_bytes": input_bytes, "raw_bytes": raw_bytes, "wire_bytes": wire_bytes,
        "compression_ratio": raw_bytes / wire_bytes if wire_bytes else None,
        "link_MBps": link_bps / 1e6 if link_bps else None, "link_source": link_source,
        "lower_bound_ms": bound * 1e3,
        **stats.summarize(run.latency_s, run.wall_s, per_query=batch), **med,
        **{f"{k}_ms": v for k, v in ms.items()}, "latency_ms": [x * 1e3 for x in run.latency_s],
        "t_start": run.t_start, "t_end": run.t_end,
    }
    if pipe.server is not None:  # the tail's work on the server's own clock
        out.update(tail_t_start=[r["tail_t_start"] for r in rows], tail_t_end=[r["tail_t_end"] for r in rows])
    out["bound_ratio"] = out["p50_ms"] / out["lower_bound_ms"] if out["lower_bound_ms"] else None
    return out
