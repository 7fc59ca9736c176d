"""The tensor wire: gRPC without generated code, a tensor as a stream of chunks.

Why this shape (numbers in docs/split_resnet.md, from benchmarks/bench_split_wire.py):
a unary call per tensor reaches about half of a raw socket, a per-tensor stream pays
set-up each time, so one bidirectional stream stays open for the whole run, with a reply
per tensor. Both ends use grpc.aio (the sync client adds a request-iterator thread per
stream). Chunks of 1 MiB keep every message below gRPC's default 4 MiB limit, so any
tensor size passes without raising limits, and they let the server copy chunk k while
chunk k+1 is on the wire. The header rides in the first chunk, so a tensor of up to
1 MiB is one message, and the server hands a single-message tensor to the decoder as a
view (no copy); a longer one is copied once, chunk by chunk, into a buffer of its size.

Messages (bytes; the first byte is the kind):
  client -> server   b"H" + uint32 JSON length + JSON {"id", "nbytes", "meta", "topk",
                     "logits"} + the first data bytes, then
                     b"C" + data, repeated until ``nbytes`` data bytes have arrived
  server -> client   b"R" + uint32 JSON length + JSON + float32 logits (if asked)
JSON of a reply: {"id", "ok", "error"?, "topk", "logits_shape", "server": {recv_s,
decompress_s, decode_s, tail_s}}. A malformed or truncated tensor gets ``ok: false`` and a
message saying what was wrong; the stream and the server go on. The server's half
(assembling, answering) is tail_service.py; this module is what both ends share plus the
client.
"""
from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Coroutine, Iterable, Iterator, TypeVar

import numpy as np

from codec import Buffer

SERVICE = "collab.split.Tail"
INFER = f"/{SERVICE}/Infer"
SINK = f"/{SERVICE}/Sink"
CHUNK = 1 << 20
MAX_TENSOR = 4 << 30   # a garbled header must not make the tail allocate without bound
# Replies carry logits (batch x 1000 float32): allow more than 4 MiB for big batches.
REPLY_LIMIT = 256 << 20
GRPC_OPTIONS = [("grpc.max_receive_message_length", REPLY_LIMIT),
                ("grpc.max_send_message_length", REPLY_LIMIT)]
LENGTH = struct.Struct("<I")   # the JSON length after a message's kind byte
T = TypeVar("T")


class WireError(RuntimeError):
    """The server answered a tensor with an error, or the stream broke."""


# ---------------------------------------------------------------- message helpers

def header_message(req_id: Any, nbytes: int, meta: dict[str, Any], topk: int = 5,
                   logits: bool = True, first: Buffer = b"") -> bytes:
    """The first message of a tensor: header JSON plus (usually) the first data bytes."""
    head = json.dumps({"id": req_id, "nbytes": nbytes, "meta": meta, "topk": topk, "logits": logits}).encode()
    return b"".join((b"H", LENGTH.pack(len(head)), head, first))


def tensor_messages(req_id: Any, data: Buffer, meta: dict[str, Any], topk: int = 5, logits: bool = True,
                    chunk: int = CHUNK) -> Iterator[bytes]:
    """All messages of one tensor: the header with the first ``chunk`` bytes, then chunks."""
    view = memoryview(data).cast("B")
    yield header_message(req_id, len(view), meta, topk, logits, view[:chunk])
    yield from chunk_messages(view[chunk:], chunk)


def chunk_messages(data: Buffer, chunk: int = CHUNK) -> Iterator[bytes]:
    """Data messages; slicing a memoryview so the only copy is into the message itself."""
    view = memoryview(data).cast("B")
    for start in range(0, len(view), chunk):
        yield b"".join((b"C", view[start:start + chunk]))


def reply_message(body: dict[str, Any], logits: np.ndarray | None = None) -> bytes:
    raw = json.dumps(body).encode()
    tail = b"" if logits is None else np.ascontiguousarray(logits, dtype=np.float32).tobytes()
    return b"".join((b"R", LENGTH.pack(len(raw)), raw, tail))


def parse_reply(msg: bytes) -> tuple[dict[str, Any], np.ndarray | None]:
    if msg[:1] != b"R" or len(msg) < 5:
        raise WireError(f"server sent a reply of unknown kind {msg[:1]!r} ({len(msg)} bytes)")
    (n,) = LENGTH.unpack_from(msg, 1)
    body = json.loads(msg[5:5 + n])
    logits = None
    if body.get("logits_shape") is not None:
        logits = np.frombuffer(msg, np.float32, offset=5 + n).reshape(body["logits_shape"])
    return body, logits


# ---------------------------------------------------------------- client side

@dataclass
class Reply:
    body: dict[str, Any]
    logits: np.ndarray | None
    rpc_s: float           # first message written -> reply parsed, on the client's clock


class TensorClient:
    """One long-lived grpc.aio stream to the tail server behind a blocking API.

    Each client owns an asyncio loop that its methods run to completion, so callers (the
    head client's query threads, tests, benchmarks) stay synchronous; ``send`` is one
    tensor, one reply. Not shared between threads: each thread opens its own client.
    """

    def __init__(self, address: str, chunk: int = CHUNK, timeout: float = 30.0) -> None:
        self.address, self.chunk = address, chunk
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
        body, logits = parse_reply(self._run(self._read()))
        return Reply(body, logits, time.perf_counter() - t0)

    def send_raw(self, messages: Iterable[bytes]) -> Reply:
        """Write raw messages and wait for one reply."""
        msg, rpc_s = self._run(self._exchange(messages))
        body, logits = parse_reply(msg)
        return Reply(body, logits, rpc_s)

    def _numbered(self, data: Buffer, meta: dict[str, Any], topk: int,
                  logits: bool) -> tuple[int, Iterator[bytes]]:
        """The next request id and the messages of one tensor under it."""
        self._next_id += 1
        return self._next_id, tensor_messages(self._next_id, data, meta, topk, logits, self.chunk)

    def send(self, data: Buffer, meta: dict[str, Any], topk: int = 5, logits: bool = True) -> Reply:
        """Send one encoded, compressed tensor; raise WireError on an error reply."""
        req_id, messages = self._numbered(data, meta, topk, logits)
        return self._checked(self.send_raw(messages), req_id)

    def send_pipelined(self, tensors: Iterable[tuple[Buffer, dict[str, Any]]], window: int = 2,
                       topk: int = 5, logits: bool = True) -> list[Reply]:
        """Send ``(data, meta)`` tensors keeping up to ``window`` of them awaiting a reply.

        Still one reply per tensor, in order, but the next tensor is on the wire while the
        server finishes the last one, so the round trip stops costing throughput (open-loop
        load, batch jobs). ``tensors`` may be a generator: encoding then overlaps sending.
        Each reply's ``rpc_s`` runs from its tensor's first write to its reply. After a
        WireError the stream holds unanswered tensors: close this client.
        """
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")

        async def run() -> list[Reply]:
            slots, sent = asyncio.Semaphore(window), asyncio.Queue()  # type: asyncio.Queue[tuple[int, float] | None]
            replies: list[Reply] = []

            async def writer() -> None:
                for data, meta in tensors:
                    await slots.acquire()
                    req_id, messages = self._numbered(data, meta, topk, logits)
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
            raise WireError(f"tail server {self.address} rejected tensor {req_id}: {reply.body.get('error')}")
        if reply.body.get("id") != req_id:
            raise WireError(f"reply for tensor {reply.body.get('id')!r} while waiting for {req_id}")
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
        """End the stream (a tensor cut short is the server's to report) and the loop."""
        async def shut() -> None:
            try:
                await self._call.done_writing()
            finally:
                await self._channel.close()
                # grpc.aio leaves a status task per call; let it finish before the loop closes
                others = asyncio.all_tasks() - {asyncio.current_task()}
                if others:
                    await asyncio.wait(others, timeout=2)
        try:
            self._run(shut())
        finally:
            self._loop.close()

    def __enter__(self) -> "TensorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
