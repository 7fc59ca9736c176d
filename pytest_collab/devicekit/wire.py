"""The tensor wire: gRPC without generated code, a request as a stream of chunks.

Why this shape (numbers in docs/split_resnet.md, from benchmarks/bench_split_wire.py):
a unary call per tensor reaches about half of a raw socket, a per-tensor stream pays
set-up each time, so one bidirectional stream stays open for the whole run, with a reply
per request. Both ends use grpc.aio (the sync client adds a request-iterator thread per
stream). Chunks of 1 MiB keep every message below gRPC's default 4 MiB limit, so any
tensor size passes without raising limits, and they let the server copy chunk k while
chunk k+1 is on the wire. The header rides in the first chunk, so a request of up to
1 MiB is one message, and the server hands a single-message request to the decoder as
views (no copy); a longer one is copied once, chunk by chunk, into a buffer of its size.

A request carries SEVERAL tensors (a cut inside a residual block sends the block's input
and its main branch): their bytes follow each other in the header's order.

Messages (bytes; the first byte is the kind):
  client -> server   b"H" + uint32 JSON length + JSON {"id", "tensors": [{"nbytes", "meta"}, ...],
                     "topk", "outputs"} + the first data bytes, then
                     b"C" + data, repeated until sum(nbytes) data bytes have arrived
  server -> client   b"R" + uint32 JSON length + JSON + the output tensors' bytes (if asked)
JSON of a reply: {"id", "ok", "error"?, "topk", "outputs": [{"shape", "dtype"}] | null,
"server": {recv_s, decompress_s, decode_s, tail_s, t_start, t_end}} (``t_*``: epoch
seconds of the tail's work on the server's clock). A malformed or truncated request gets
``ok: false`` and a message saying what was wrong; the stream and the server go on. The
server's half (assembling, answering) is tail_service.py; this module is what both ends
share plus the client.
"""
from __future__ import annotations

import asyncio
import json
import math
import struct
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Coroutine, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from .codec import Buffer

SERVICE = "collab.split.Tail"
INFER = f"/{SERVICE}/Infer"
SINK = f"/{SERVICE}/Sink"
CHUNK = 1 << 20
MAX_REQUEST = 4 << 30   # a garbled header must not make the tail allocate without bound
MAX_TENSORS = 256       # boundary tensors per request
# Replies carry outputs (batch x 1000 float32 logits): allow more than 4 MiB for big batches.
REPLY_LIMIT = 256 << 20
GRPC_OPTIONS = [("grpc.max_receive_message_length", REPLY_LIMIT),
                ("grpc.max_send_message_length", REPLY_LIMIT)]
LENGTH = struct.Struct("<I")   # the JSON length after a message's kind byte
T = TypeVar("T")
Part = tuple[Buffer, dict[str, Any]]   # one encoded tensor: its wire bytes and its codec meta


class WireError(RuntimeError):
    """The server answered a request with an error, or the stream broke."""


# ---------------------------------------------------------------- message helpers

def header_message(req_id: Any, parts: Sequence[tuple[int, dict[str, Any]]], topk: int = 5,
                   outputs: bool = True, first: Buffer = b"", extra: dict[str, Any] | None = None) -> bytes:
    """The first message of a request: header JSON (``(nbytes, meta)`` per tensor, plus
    ``extra`` fields: the data plane's segment name) and (usually) the first data bytes."""
    head = json.dumps({"id": req_id, "tensors": [{"nbytes": n, "meta": m} for n, m in parts],
                       "topk": topk, "outputs": outputs, **(extra or {})}).encode()
    return b"".join((b"H", LENGTH.pack(len(head)), head, first))


def request_messages(req_id: Any, tensors: Sequence[Part], topk: int = 5, outputs: bool = True,
                     chunk: int = CHUNK, timings: bool = True) -> Iterator[bytes]:
    """All messages of one request: the header with the first ``chunk`` data bytes, then
    chunks; the tensors' bytes follow each other, a chunk may hold the end of one and the
    start of the next. ``timings=False``: the reply leaves out ``server``."""
    views = [memoryview(data).cast("B") for data, _ in tensors]
    pieces = _chunked(views, chunk)
    first = next(pieces, [])
    yield header_message(req_id, [(len(v), meta) for v, (_, meta) in zip(views, tensors)], topk, outputs,
                         b"".join(first), None if timings else {"timings": False})
    for piece in pieces:
        yield b"".join((b"C", *piece))


def chunk_messages(data: Buffer, chunk: int = CHUNK) -> Iterator[bytes]:
    """Data messages of one buffer (tests and benchmarks build requests by hand)."""
    for piece in _chunked([memoryview(data).cast("B")], chunk):
        yield b"".join((b"C", *piece))


def _chunked(views: list[memoryview], chunk: int) -> Iterator[list[memoryview]]:
    """Slices of ``views`` in order, ``chunk`` bytes per group (the last may be short);
    slicing memoryviews so the only copy is into the message itself."""
    group: list[memoryview] = []
    room = chunk
    for view in views:
        start = 0
        while start < len(view):
            take = view[start:start + room]
            group.append(take)
            start += len(take)
            room -= len(take)
            if room == 0:
                yield group
                group, room = [], chunk
    if group:
        yield group


def output_arrays(outputs: Sequence[np.ndarray]) -> tuple[list[dict[str, Any]], list[memoryview]]:
    """A reply's ``outputs`` specs (``{"shape", "dtype"}``) and each array's bytes, in order."""
    # ascontiguousarray makes a 0-d array 1-d: keep each output's own shape
    arrays = [np.ascontiguousarray(o).reshape(np.shape(o)) for o in outputs]
    return ([{"shape": list(a.shape), "dtype": a.dtype.str} for a in arrays],
            [a.reshape(-1).view(np.uint8).data for a in arrays])


def reply_message(body: dict[str, Any], outputs: Sequence[np.ndarray] | None = None) -> bytes:
    """A reply; ``outputs`` (the tail's tensors) follow the JSON in their own dtypes."""
    data: list[memoryview] = []
    if outputs is not None:
        specs, data = output_arrays(outputs)
        body = {**body, "outputs": specs}
    raw = json.dumps(body).encode()
    return b"".join((b"R", LENGTH.pack(len(raw)), raw, *data))


def parse_reply(msg: bytes | bytearray) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """The reply's JSON and its output tensors (``None`` when the request asked for none)."""
    if msg[:1] != b"R" or len(msg) < 5:
        raise WireError(f"server sent a reply of unknown kind {msg[:1]!r} ({len(msg)} bytes)")
    (n,) = LENGTH.unpack_from(msg, 1)
    body = json.loads(msg[5:5 + n])
    return body, output_views(msg, body.get("outputs"), 5 + n)


def output_views(msg: Buffer, specs: list[dict[str, Any]] | None, offset: int) -> list[np.ndarray] | None:
    """The output arrays ``specs`` describe, as views of ``msg`` from ``offset`` on."""
    if specs is None:
        return None
    arrays = []
    for spec in specs:
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        count = math.prod(shape)
        arrays.append(np.frombuffer(msg, dtype, count=count, offset=offset).reshape(shape))
        offset += count * dtype.itemsize
    return arrays


# ---------------------------------------------------------------- client side

async def _settle() -> None:
    """grpc.aio leaves a status task per call: let them finish before the loop closes."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others, timeout=2)


@dataclass
class Reply:
    body: dict[str, Any]
    outputs: list[np.ndarray] | None   # the tail's output tensors, when asked for
    rpc_s: float           # first message written -> reply parsed, on the client's clock

    @property
    def logits(self) -> np.ndarray | None:
        """The first output (a classifier's logits)."""
        return self.outputs[0] if self.outputs else None


class TensorClient:
    """One long-lived grpc.aio stream to the tail server behind a blocking API, and the
    data plane (dataplane.py) negotiated over it: ``transport`` ``auto`` (default: shared
    memory on one host, else a side TCP socket, else this stream), ``grpc``, ``tcp``,
    ``shm``; :attr:`transport` says which one carries the tensors.

    Each client owns an asyncio loop that its methods run to completion, so callers (the
    head program's query threads, tests, benchmarks) stay synchronous; ``send`` is one
    request (one or more tensors), one reply. Not shared between threads: each thread opens its own client.
    """

    def __init__(self, address: str, chunk: int = CHUNK, timeout: float = 30.0, transport: str = "auto") -> None:
        self.address, self.chunk, self.transport = address, chunk, transport
        self.plane: Any = None
        self._loop = asyncio.new_event_loop()
        self._next_id = 0
        try:
            self._run(self._open(timeout))
        except BaseException:
            self._loop.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        # The loop runs in the caller's thread, only while a call is in flight: a loop thread
        # would add two thread hand-overs per tensor, which cost most under CPU contention.
        return self._loop.run_until_complete(coro)

    async def _open(self, timeout: float) -> None:
        import grpc

        self._channel = grpc.aio.insecure_channel(self.address, options=GRPC_OPTIONS)
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except asyncio.TimeoutError as exc:
            await self._channel.close()
            raise WireError(f"no tail server answers at {self.address} within {timeout:.0f}s: is it "
                            "running and READY, and is the address reachable?") from exc
        from .dataplane import negotiate

        try:
            self.plane, self.transport = await negotiate(self._channel, self.address, self.transport, timeout)
        except BaseException:
            await self._channel.close()
            await _settle()
            raise
        self._call = self._channel.stream_stream(INFER)()

    async def _write(self, messages: Iterable[bytes]) -> None:
        for m in messages:
            await self._call.write(m)

    async def _read(self) -> bytes:
        import grpc

        try:
            msg = await self._call.read()
        except grpc.RpcError as exc:  # name the server and the status
            raise WireError(f"stream to {self.address} failed: {exc}") from exc
        if msg is grpc.aio.EOF:
            raise WireError(f"the stream to {self.address} closed without a reply")
        return msg

    async def _exchange(self, messages: Iterable[bytes]) -> tuple[bytes, float]:
        t0 = time.perf_counter()
        await self._write(messages)
        msg = await self._read()
        return msg, time.perf_counter() - t0

    def write(self, messages: Iterable[bytes]) -> None:
        """Put raw messages on the stream without waiting (tests send malformed ones)."""
        self._run(self._write(messages))

    def read(self) -> Reply:
        """Wait for the next reply on the stream."""
        t0 = time.perf_counter()
        body, outputs = parse_reply(self._run(self._read()))
        return Reply(body, outputs, time.perf_counter() - t0)

    def send_raw(self, messages: Iterable[bytes]) -> Reply:
        """Write raw messages and wait for one reply."""
        msg, rpc_s = self._run(self._exchange(messages))
        body, outputs = parse_reply(msg)
        return Reply(body, outputs, rpc_s)

    def _numbered(self, tensors: Sequence[Part], topk: int, outputs: bool,
                  timings: bool) -> tuple[int, Iterator[bytes]]:
        """The next request id and the messages of one request under it."""
        self._next_id += 1
        return self._next_id, request_messages(self._next_id, tensors, topk, outputs, self.chunk, timings)

    def send(self, tensors: Sequence[Part], topk: int = 5, outputs: bool = True, timings: bool = True) -> Reply:
        """Send one request of encoded, compressed ``(data, meta)`` tensors (in the order the
        tail takes them); raise WireError on an error reply. ``timings=False``: the reply has
        no ``server`` timings (a leaner reply for a caller that does not read them)."""
        if self.plane is not None:  # the lean path: no generator, no event loop
            self._next_id += 1
            body, arrays, rpc_s = self.plane.exchange(self._next_id, tensors, topk, outputs, timings)
            return self._checked(Reply(body, arrays, rpc_s), self._next_id)
        req_id, messages = self._numbered(tensors, topk, outputs, timings)
        return self._checked(self.send_raw(messages), req_id)

    def send_pipelined(self, requests: Iterable[Sequence[Part]], window: int = 2,
                       topk: int = 5, outputs: bool = True, timings: bool = True) -> list[Reply]:
        """Send requests (each a list of ``(data, meta)``) keeping up to ``window`` of them
        awaiting a reply.

        Still one reply per request, in order, but the next is on the wire while the server
        finishes the last one, so the round trip stops costing throughput (open-loop load,
        batch jobs). ``requests`` may be a generator: encoding then overlaps sending. Each
        reply's ``rpc_s`` runs from its request's first write to its reply. After a
        WireError the stream holds unanswered requests: close this client.
        """
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if self.plane is not None:
            numbered = ((self._numbered(t, topk, outputs, timings)[0], t) for t in requests)
            return [self._checked(Reply(body, arrays, rpc_s), req_id)
                    for req_id, body, arrays, rpc_s in self.plane.pipelined(numbered, window, topk, outputs, timings)]

        async def run() -> list[Reply]:
            slots = asyncio.Semaphore(window)
            sent: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
            replies: list[Reply] = []

            async def writer() -> None:
                for tensors in requests:
                    await slots.acquire()
                    req_id, messages = self._numbered(tensors, topk, outputs, timings)
                    sent.put_nowait((req_id, time.perf_counter()))
                    await self._write(messages)
                sent.put_nowait(None)

            async def reader() -> None:
                while (item := await sent.get()) is not None:
                    body, arr = parse_reply(await self._read())
                    replies.append(self._checked(Reply(body, arr, time.perf_counter() - item[1]), item[0]))
                    slots.release()

            tasks = [asyncio.ensure_future(writer()), asyncio.ensure_future(reader())]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                raise
            return replies

        return self._run(run())

    def _checked(self, reply: Reply, req_id: int) -> Reply:
        if not reply.body.get("ok"):
            raise WireError(f"tail server {self.address} rejected request {req_id}: {reply.body.get('error')}")
        if reply.body.get("id") != req_id:
            raise WireError(f"reply for request {reply.body.get('id')!r} while waiting for {req_id}")
        return reply

    def measure_link(self, nbytes: int = 32 << 20) -> float:
        """Bytes per second of a one-way stream of ``nbytes`` (the link-throughput probe)."""
        payload = bytes(self.chunk)
        count = max(1, nbytes // self.chunk)

        async def probe() -> tuple[int, float]:
            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(count):
                    yield payload
            t0 = time.perf_counter()
            got = await self._channel.stream_unary(SINK)(chunks())
            return struct.unpack("<Q", got)[0], time.perf_counter() - t0

        got, seconds = self._run(probe())
        return got / seconds

    def close(self) -> None:
        """End the stream (a request cut short is the server's to report) and the loop."""
        async def shut() -> None:
            try:
                await self._call.done_writing()
            finally:
                await self._channel.close()
                await _settle()
        try:
            if self.plane is not None:
                self.plane.close()
            self._run(shut())
        finally:
            self._loop.close()

    def __enter__(self) -> "TensorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
