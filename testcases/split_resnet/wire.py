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
message saying what was wrong; the stream and the server go on.
"""
from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Coroutine, Iterable, Iterator, TypeVar, Union

import numpy as np

import codec

SERVICE = "collab.split.Tail"
INFER = f"/{SERVICE}/Infer"
SINK = f"/{SERVICE}/Sink"
CHUNK = 1 << 20
MAX_TENSOR = 4 << 30   # a garbled header must not make the server allocate without bound
# Replies carry logits (batch x 1000 float32): allow more than 4 MiB for big batches.
REPLY_LIMIT = 256 << 20
_OPTIONS = [("grpc.max_receive_message_length", REPLY_LIMIT),
            ("grpc.max_send_message_length", REPLY_LIMIT)]
_LEN = struct.Struct("<I")
Buffer = Union[bytes, bytearray, memoryview]
T = TypeVar("T")


class WireError(RuntimeError):
    """The server answered a tensor with an error, or the stream broke."""


# ---------------------------------------------------------------- message helpers

def header_message(req_id: Any, nbytes: int, meta: dict[str, Any], topk: int = 5,
                   logits: bool = True, first: Buffer = b"") -> bytes:
    """The first message of a tensor: header JSON plus (usually) the first data bytes."""
    head = json.dumps({"id": req_id, "nbytes": nbytes, "meta": meta, "topk": topk, "logits": logits}).encode()
    return b"".join((b"H", _LEN.pack(len(head)), head, first))


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
    return b"".join((b"R", _LEN.pack(len(raw)), raw, tail))


def parse_reply(msg: bytes) -> tuple[dict[str, Any], np.ndarray | None]:
    if msg[:1] != b"R" or len(msg) < 5:
        raise WireError(f"server sent a reply of unknown kind {msg[:1]!r} ({len(msg)} bytes)")
    (n,) = _LEN.unpack_from(msg, 1)
    body = json.loads(msg[5:5 + n])
    logits = None
    if body.get("logits_shape") is not None:
        logits = np.frombuffer(msg, np.float32, offset=5 + n).reshape(body["logits_shape"])
    return body, logits


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
        (n,) = _LEN.unpack_from(msg, 1)
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
            else:
                tensor.data = bytearray(tensor.nbytes) if len(data) < tensor.nbytes else b""
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

    def __init__(self, infer: Infer | None) -> None:
        import concurrent.futures

        self.infer = infer
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
            checksum = None if logits is not None else float(np.add.reduce(arr, axis=None, dtype=np.float64))
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
                on_ready: Callable[[int], None] | None = None) -> None:
    """Serve until cancelled; ``on_ready(port)`` runs once the port is bound."""
    import grpc

    service = TailService(infer)
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Infer": grpc.stream_stream_rpc_method_handler(service.handle),
        "Sink": grpc.stream_unary_rpc_method_handler(service.sink),
    })
    server = grpc.aio.server(options=_OPTIONS)
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

        self._channel = grpc.aio.insecure_channel(self.address, options=_OPTIONS)
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

    def send(self, data: Buffer, meta: dict[str, Any], topk: int = 5, logits: bool = True) -> Reply:
        """Send one encoded, compressed tensor; raise WireError on an error reply."""
        self._next_id += 1
        req_id = self._next_id
        reply = self.send_raw(tensor_messages(req_id, data, meta, topk, logits, self.chunk))
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
