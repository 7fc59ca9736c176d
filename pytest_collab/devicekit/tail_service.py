"""The tail's side of the wire: assemble chunk messages into requests, answer each one;
warm-up and the readiness line every tail program prints.

The protocol (message kinds, reply JSON) is described in wire.py, which both ends import;
this module is the server's half only, so a head device never loads it. The Assembler has
no network and no clock beyond a header's arrival time, so its rules are tested directly.
"""
from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

import numpy as np

from . import codec
from .codec import Buffer
from .wire import GRPC_OPTIONS, LENGTH, MAX_REQUEST, MAX_TENSORS, SERVICE, WireError, reply_message

READY = "READY port={port}"   # what a tail program prints once it serves, warm
READY_PATTERN = r"READY port=(\d+)"

# ---------------------------------------------------------------- server side: assembling

@dataclass(slots=True)
class Request:
    """One request as it arrives: header fields, the data so far, when its header came."""

    req_id: Any
    parts: list[tuple[int, dict[str, Any]]]   # (nbytes, meta) per tensor, in order
    topk: int
    outputs: bool
    t0: float
    data: Buffer = b""
    got: int = 0
    shm: str | None = None   # the data plane's segment holding the bytes (dataplane.py)
    timed: bool = True       # the reply carries the server's timings ("server")
    decoders: Sequence[codec.Decoder] | None = None   # the parts' metas, parsed (the data plane caches them)
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = sum([n for n, _ in self.parts])

    def tensors(self) -> list[tuple[memoryview, dict[str, Any]]]:
        """Each tensor's bytes (a view into the request's data) and its meta."""
        view = memoryview(self.data).cast("B")
        if len(self.parts) == 1:
            return [(view, self.parts[0][1])]
        out, start = [], 0
        for n, meta in self.parts:
            out.append((view[start:start + n], meta))
            start += n
        return out


def error_body(req_id: Any, text: str) -> dict[str, Any]:
    return {"id": req_id, "ok": False, "error": text}


def _error(req_id: Any, text: str) -> bytes:
    return reply_message(error_body(req_id, text))


def _parse_header(msg: bytes) -> tuple[Request, memoryview]:
    """The header's fields and the data bytes that came with it."""
    try:
        (n,) = LENGTH.unpack_from(msg, 1)
        if 5 + n > len(msg):
            raise ValueError(f"JSON length {n} runs past the {len(msg)}-byte message")
        head = json.loads(msg[5:5 + n])
        parts = [(int(t["nbytes"]), dict(t["meta"])) for t in head["tensors"]]
        request = Request(head["id"], parts, int(head.get("topk", 5)), bool(head.get("outputs", True)),
                          time.perf_counter(), shm=head.get("shm"), timed=bool(head.get("timings", True)))
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise WireError(f"malformed header ({type(exc).__name__}: {exc}); expected b'H' + uint32 length + "
                        "JSON with id and tensors [{nbytes, meta}] + data") from exc
    if not 1 <= len(parts) <= MAX_TENSORS:
        raise WireError(f"malformed header: {len(parts)} tensors, a request carries 1..{MAX_TENSORS}")
    if any(n < 0 for n, _ in parts) or request.nbytes > MAX_REQUEST:  # the server allocates up front
        raise WireError(f"malformed header: tensor sizes {[n for n, _ in parts]} outside 0..{MAX_REQUEST} "
                        "in all")
    return request, memoryview(msg)[5 + n:]


class Assembler:
    """Turns the message stream into whole requests and error replies; no network, no clock
    beyond the header's arrival time, so its rules are tested directly."""

    def __init__(self) -> None:
        self.pending: Request | None = None

    def feed(self, msg: bytes) -> Iterator[Request | bytes]:
        """Yield each finished :class:`Request` and each error reply (bytes) ``msg`` causes."""
        kind = msg[:1]
        if kind == b"H":
            if self.pending is not None:
                p = self.pending
                yield _error(p.req_id, f"truncated: a new header came after {p.got} of {p.nbytes} bytes "
                                       f"of request {p.req_id!r}")
            self.pending = None
            try:
                request, data = _parse_header(msg)
            except WireError as exc:
                yield _error(None, str(exc))
                return
            self.pending = request
            if len(data) == request.nbytes:      # the whole request in one message: keep a view
                request.data, request.got = data, len(data)
            else:  # numpy's empty: unlike bytearray, no zeroing of memory about to be overwritten
                request.data = np.empty(request.nbytes, np.uint8).data if len(data) < request.nbytes else b""
                yield from self._add(data)
        elif kind == b"C":
            if self.pending is None:
                yield _error(None, "malformed: a data chunk came without a header before it")
                return
            yield from self._add(memoryview(msg)[1:])
        else:
            yield _error(None, f"malformed: unknown message kind {kind!r} (expected b'H' or b'C')")
            return
        p = self.pending
        if p is not None and p.got == p.nbytes:
            self.pending = None
            yield p

    def _add(self, data: memoryview) -> Iterator[bytes]:
        p = self.pending
        assert p is not None
        if p.got + len(data) > p.nbytes:
            self.pending = None
            yield _error(p.req_id, f"malformed: {p.got + len(data)} bytes arrived, header said {p.nbytes}")
            return
        p.data[p.got:p.got + len(data)] = data  # type: ignore[index]  # one copy, into place
        p.got += len(data)

    def end(self) -> Iterator[bytes]:
        """The stream closed: a request still incomplete is reported as truncated."""
        p, self.pending = self.pending, None
        if p is not None:
            yield _error(p.req_id, f"truncated: the stream ended after {p.got} of {p.nbytes} bytes "
                                   f"of request {p.req_id!r}")


# ---------------------------------------------------------------- server side: serving

Infer = Callable[[list[np.ndarray]], Sequence[np.ndarray]]


class TailService:
    """Runs ``infer`` on each assembled request's tensors and replies per request."""

    def __init__(self, infer: Infer | None, checksum: bool = True) -> None:
        import concurrent.futures

        self.infer, self.checksum = infer, checksum
        # The data plane answers in its connection threads: one inference at a time, as here.
        self.lock = threading.Lock()
        # One thread: torch runs its own intra-op threads; the event loop stays free to receive.
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tail")

    async def handle(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        assembler = Assembler()
        async for msg in requests:
            for out in assembler.feed(msg):
                yield out if isinstance(out, bytes) else await loop.run_in_executor(self.pool, self._answer, out)
        for out in assembler.end():
            yield out

    def _answer(self, p: Request) -> bytes:
        """:meth:`result` as a reply message."""
        return reply_message(*self.result(p))

    def result(self, p: Request) -> tuple[dict[str, Any], list[np.ndarray] | None]:
        """Decompress, decode, run the tail: the reply's body and outputs (``None``: the
        request asked for none); any failure becomes an error body."""
        t_recv = time.perf_counter() - p.t0
        try:
            wall0, t0 = time.time(), time.perf_counter()
            decoders = p.decoders or [codec.decoder(meta) for _, meta in p.parts]
            raws = [codec.decompress(data, dec.codec) for (data, _), dec in zip(p.tensors(), decoders)]
            t1 = time.perf_counter()
            arrays = [dec(raw) for dec, raw in zip(decoders, raws)]
            t2 = time.perf_counter()
            with self.lock:
                outputs = list(self.infer(arrays)) if self.infer is not None else None
            checksums = ([float(np.add.reduce(a, axis=None, dtype=np.float64)) for a in arrays]
                         if outputs is None and self.checksum else None)
            t3 = time.perf_counter()
        except Exception as exc:  # the server must keep serving whatever one request did
            return error_body(p.req_id, f"{type(exc).__name__}: {exc}"), None
        # In sink mode the checksum is the "tail": a client subtracting the server's work from
        # its round trip (transfer = rpc - decompress - decode - tail) leaves it out of transfer.
        body: dict[str, Any] = {"id": p.req_id, "ok": True}
        if p.timed:  # only the head's per-stage timings read them (split_head asks; benchmarks do not)
            body["server"] = {"recv_s": t_recv, "decompress_s": t1 - t0, "decode_s": t2 - t1, "tail_s": t3 - t2,
                              "t_start": wall0, "t_end": wall0 + (t3 - t0)}
        if outputs is None:  # sink mode (benchmarks, tests): prove the tensors arrived intact
            if checksums is not None:
                body.update(checksum=float(np.sum(checksums)), checksums=checksums)
            return body, None
        first = outputs[0] if outputs else None
        if first is not None and first.ndim and first.dtype.kind == "f":
            k = max(1, min(p.topk, first.shape[-1]))
            body["topk"] = np.argsort(-first, axis=-1)[..., :k].tolist()
        return body, (outputs if p.outputs else None)

    async def sink(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        """Counts bytes: the quick link-throughput probe over the same connection."""
        total = 0
        async for msg in requests:
            total += len(msg)
        return struct.pack("<Q", total)


async def serve(infer: Infer | None, bind: str = "127.0.0.1", port: int = 0,
                on_ready: Callable[[int], None] | None = None, checksum: bool = True,
                data_port: int | None = 0) -> None:
    """Serve until cancelled; ``on_ready(port)`` runs once the port is bound. Without
    ``infer`` (sink mode) each reply carries the tensors' sums, unless ``checksum`` is off.
    ``data_port``: the data plane's TCP port (0 = any free one, None = gRPC only)."""
    import grpc

    from .data_service import DataServer

    service = TailService(infer, checksum)
    data = DataServer(service, bind, data_port)
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Infer": grpc.stream_stream_rpc_method_handler(service.handle),
        "Sink": grpc.stream_unary_rpc_method_handler(service.sink),
        "Open": grpc.unary_unary_rpc_method_handler(data.open),
    })
    server = grpc.aio.server(options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{bind}:{port}")
    if bound == 0:
        raise OSError(f"could not bind {bind}:{port}: address in use or not local; pass --port 0")
    await server.start()
    if on_ready is not None:
        on_ready(bound)
    try:
        await server.wait_for_termination()
    finally:
        data.close()
        await server.stop(grace=1)
        service.pool.shutdown(wait=False)


def run_until_signalled(infer: Infer | None, bind: str, port: int, on_ready: Callable[[int], None],
                        checksum: bool = True, data_port: int | None = 0) -> None:
    """:func:`serve` in a fresh event loop until SIGTERM or SIGINT (how the lab stops programs)."""
    import signal

    async def run() -> None:
        task = asyncio.ensure_future(serve(infer, bind, port, on_ready, checksum, data_port))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(run())


def warm_up(infer: Infer, inputs: Sequence[np.ndarray], count: int) -> float:
    """Run ``count`` inferences on ``inputs`` (zeros of the tail's input shapes); seconds taken.
    READY comes only after this, so the head never measures a cold tail."""
    t0 = time.perf_counter()
    for _ in range(count):
        infer(list(inputs))
    return time.perf_counter() - t0
