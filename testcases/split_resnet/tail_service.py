"""The tail's side of the wire: assemble chunk messages into tensors, answer each one.

The protocol (message kinds, reply JSON) is described in wire.py, which both ends import;
this module is the server's half only, so a head device never loads it. The Assembler has
no network and no clock beyond a header's arrival time, so its rules are tested directly.
"""
from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import numpy as np

import codec
from codec import Buffer
from wire import GRPC_OPTIONS, LENGTH, MAX_TENSOR, SERVICE, WireError, reply_message


# ---------------------------------------------------------------- server side: assembling

@dataclass
class Tensor:
    """One tensor as it arrives: header fields, the data so far, when its header came."""

    req_id: Any
    nbytes: int
    meta: dict[str, Any]
    topk: int
    logits: bool
    t0: float
    data: Buffer = b""
    got: int = 0


def _error(req_id: Any, text: str) -> bytes:
    return reply_message({"id": req_id, "ok": False, "error": text})


def _parse_header(msg: bytes) -> tuple[Tensor, memoryview]:
    """The header's fields and the data bytes that came with it."""
    try:
        (n,) = LENGTH.unpack_from(msg, 1)
        if 5 + n > len(msg):
            raise ValueError(f"JSON length {n} runs past the {len(msg)}-byte message")
        head = json.loads(msg[5:5 + n])
        tensor = Tensor(head["id"], int(head["nbytes"]), dict(head["meta"]), int(head.get("topk", 5)),
                        bool(head.get("logits", True)), time.perf_counter())
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise WireError(f"malformed header ({type(exc).__name__}: {exc}); expected b'H' + uint32 length + "
                        "JSON with id, nbytes, meta + data") from exc
    if not 0 <= tensor.nbytes <= MAX_TENSOR:  # the server allocates nbytes up front
        raise WireError(f"malformed header: nbytes={tensor.nbytes} outside 0..{MAX_TENSOR}")
    return tensor, memoryview(msg)[5 + n:]


class Assembler:
    """Turns the message stream into whole tensors and error replies; no network, no clock
    beyond the header's arrival time, so its rules are tested directly."""

    def __init__(self) -> None:
        self.pending: Tensor | None = None

    def feed(self, msg: bytes) -> Iterator[Tensor | bytes]:
        """Yield each finished :class:`Tensor` and each error reply (bytes) ``msg`` causes."""
        kind = msg[:1]
        if kind == b"H":
            if self.pending is not None:
                p = self.pending
                yield _error(p.req_id, f"truncated: a new header came after {p.got} of {p.nbytes} bytes "
                                       f"of tensor {p.req_id!r}")
            self.pending = None
            try:
                tensor, data = _parse_header(msg)
            except WireError as exc:
                yield _error(None, str(exc))
                return
            self.pending = tensor
            if len(data) == tensor.nbytes:      # the whole tensor in one message: keep a view
                tensor.data, tensor.got = data, len(data)
            else:  # numpy's empty: unlike bytearray, no zeroing of memory about to be overwritten
                tensor.data = memoryview(np.empty(tensor.nbytes, np.uint8)) if len(data) < tensor.nbytes else b""
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
        """The stream closed: a tensor still incomplete is reported as truncated."""
        p, self.pending = self.pending, None
        if p is not None:
            yield _error(p.req_id, f"truncated: the stream ended after {p.got} of {p.nbytes} bytes "
                                   f"of tensor {p.req_id!r}")


# ---------------------------------------------------------------- server side: serving

Infer = Callable[[np.ndarray], np.ndarray]


class TailService:
    """Runs ``infer`` on each assembled tensor and replies per tensor."""

    def __init__(self, infer: Infer | None, checksum: bool = True) -> None:
        import concurrent.futures

        self.infer, self.checksum = infer, checksum
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

    def _answer(self, p: Tensor) -> bytes:
        """Decompress, decode, run the tail; any failure becomes an error reply."""
        t_recv = time.perf_counter() - p.t0
        try:
            t0 = time.perf_counter()
            raw = codec.decompress(p.data, str(p.meta.get("codec", "none")))
            t1 = time.perf_counter()
            arr = codec.decode(raw, p.meta)
            t2 = time.perf_counter()
            logits = self.infer(arr) if self.infer is not None else None
            checksum = (float(np.add.reduce(arr, axis=None, dtype=np.float64))
                        if logits is None and self.checksum else None)
            t3 = time.perf_counter()
        except Exception as exc:  # the server must keep serving whatever one tensor did
            return _error(p.req_id, f"{type(exc).__name__}: {exc}")
        # In sink mode the checksum is the "tail": a client subtracting the server's work from
        # its round trip (transfer = rpc - decompress - decode - tail) leaves it out of transfer.
        body: dict[str, Any] = {"id": p.req_id, "ok": True, "server": {
            "recv_s": t_recv, "decompress_s": t1 - t0, "decode_s": t2 - t1, "tail_s": t3 - t2}}
        if logits is None:  # sink mode (benchmarks, tests): prove the tensor arrived intact
            body.update(checksum=checksum, logits_shape=None)
            return reply_message(body)
        k = max(1, min(p.topk, logits.shape[-1]))
        body["topk"] = np.argsort(-logits, axis=-1)[..., :k].tolist()
        body["logits_shape"] = list(logits.shape) if p.logits else None
        return reply_message(body, logits if p.logits else None)

    async def sink(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        """Counts bytes: the quick link-throughput probe over the same connection."""
        total = 0
        async for msg in requests:
            total += len(msg)
        return struct.pack("<Q", total)


async def serve(infer: Infer | None, bind: str = "127.0.0.1", port: int = 0,
                on_ready: Callable[[int], None] | None = None, checksum: bool = True) -> None:
    """Serve until cancelled; ``on_ready(port)`` runs once the port is bound. Without
    ``infer`` (sink mode) each reply carries the tensor's sum, unless ``checksum`` is off."""
    import grpc

    service = TailService(infer, checksum)
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Infer": grpc.stream_stream_rpc_method_handler(service.handle),
        "Sink": grpc.stream_unary_rpc_method_handler(service.sink),
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
        await server.stop(grace=1)
        service.pool.shutdown(wait=False)
