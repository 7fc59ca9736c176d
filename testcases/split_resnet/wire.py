"""The tensor wire: gRPC without generated code, a tensor as a stream of chunks.

Why a bidirectional stream held open for the whole run: a unary call per tensor reaches
about half of a raw socket's throughput, a per-tensor stream pays set-up each time; one
long stream of 1 MiB chunks with a reply per tensor is close to the socket (see
benchmarks/bench_split_wire.py). Chunks keep every message below gRPC's default 4 MiB
limit, so any tensor size passes without raising limits.

Messages (bytes; the first byte is the kind):
  client -> server   b"H" + JSON {"id", "nbytes", "meta", "topk", "logits"}  then
                     b"C" + data, repeated until ``nbytes`` bytes have arrived
  server -> client   b"R" + uint32 JSON length + JSON + float32 logits (if asked)
JSON of a reply: {"id", "ok", "error"?, "topk", "logits_shape", "server": {recv_s,
decompress_s, decode_s, tail_s}}. A malformed or truncated tensor gets ``ok: false`` and a
message saying what was wrong; the stream and the server go on.
"""
from __future__ import annotations

import json
import queue
import struct
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator

import numpy as np

import codec

SERVICE = "collab.split.Tail"
INFER = f"/{SERVICE}/Infer"
SINK = f"/{SERVICE}/Sink"
CHUNK = 1 << 20
# Replies carry logits (batch x 1000 float32): allow more than 4 MiB for big batches.
REPLY_LIMIT = 256 << 20
_OPTIONS = [("grpc.max_receive_message_length", REPLY_LIMIT),
            ("grpc.max_send_message_length", REPLY_LIMIT)]


class WireError(RuntimeError):
    """The server answered a tensor with an error, or the stream broke."""


# ---------------------------------------------------------------- message helpers

def header_message(req_id: Any, nbytes: int, meta: dict[str, Any], topk: int = 5,
                   logits: bool = True) -> bytes:
    return b"H" + json.dumps({"id": req_id, "nbytes": nbytes, "meta": meta,
                              "topk": topk, "logits": logits}).encode()


def chunk_messages(data: bytes, chunk: int = CHUNK) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), chunk):
        yield b"C" + view[start:start + chunk]


def reply_message(body: dict[str, Any], logits: np.ndarray | None = None) -> bytes:
    raw = json.dumps(body).encode()
    tail = b"" if logits is None else np.ascontiguousarray(logits, dtype=np.float32).tobytes()
    return b"R" + struct.pack("<I", len(raw)) + raw + tail


def parse_reply(msg: bytes) -> tuple[dict[str, Any], np.ndarray | None]:
    if msg[:1] != b"R" or len(msg) < 5:
        raise WireError(f"server sent a reply of unknown kind {msg[:1]!r} ({len(msg)} bytes)")
    (n,) = struct.unpack_from("<I", msg, 1)
    body = json.loads(msg[5:5 + n])
    logits = None
    if body.get("logits_shape") is not None:
        logits = np.frombuffer(msg, np.float32, offset=5 + n).reshape(body["logits_shape"])
    return body, logits


# ---------------------------------------------------------------- server side

Infer = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Pending:
    req_id: Any
    nbytes: int
    meta: dict[str, Any]
    topk: int
    logits: bool
    t0: float
    buf: bytearray = field(default_factory=bytearray)  # writable: torch.from_numpy wants that
    got: int = 0


def _error(req_id: Any, text: str) -> bytes:
    return reply_message({"id": req_id, "ok": False, "error": text})


def _parse_header(msg: bytes) -> _Pending:
    try:
        head = json.loads(bytes(msg[1:]))
        pending = _Pending(head["id"], int(head["nbytes"]), dict(head["meta"]),
                           int(head.get("topk", 5)), bool(head.get("logits", True)), time.perf_counter())
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"malformed header ({type(exc).__name__}: {exc}); expected b'H' + JSON with "
                        "id, nbytes, meta") from exc
    if pending.nbytes < 0:
        raise WireError(f"malformed header: nbytes={pending.nbytes} is negative")
    return pending


class TailService:
    """Turns the chunk stream into tensors, runs ``infer`` on them, replies per tensor."""

    def __init__(self, infer: Infer | None) -> None:
        import concurrent.futures

        self.infer = infer
        # One thread: torch runs its own intra-op threads; the event loop stays free to receive.
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tail")

    async def handle(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        import asyncio

        loop = asyncio.get_running_loop()
        pending: _Pending | None = None
        async for msg in requests:
            kind = msg[:1]
            if kind == b"H":
                if pending is not None:
                    yield _error(pending.req_id, f"truncated: a new header came after {pending.got} of "
                                                 f"{pending.nbytes} bytes of tensor {pending.req_id!r}")
                try:
                    pending = _parse_header(msg)
                except WireError as exc:
                    pending = None
                    yield _error(None, str(exc))
                    continue
            elif kind == b"C":
                if pending is None:
                    yield _error(None, "malformed: a data chunk came without a header before it")
                    continue
                pending.buf += memoryview(msg)[1:]
                pending.got += len(msg) - 1
            else:
                yield _error(None, f"malformed: unknown message kind {kind!r} (expected b'H' or b'C')")
                continue
            if pending is not None and pending.got > pending.nbytes:
                yield _error(pending.req_id, f"malformed: {pending.got} bytes arrived, header said {pending.nbytes}")
                pending = None
            elif pending is not None and pending.got == pending.nbytes:
                done, pending = pending, None
                yield await loop.run_in_executor(self.pool, self._answer, done)
        if pending is not None:
            yield _error(pending.req_id, f"truncated: the stream ended after {pending.got} of "
                                         f"{pending.nbytes} bytes of tensor {pending.req_id!r}")

    def _answer(self, p: _Pending) -> bytes:
        """Decompress, decode, run the tail; any failure becomes an error reply."""
        t_recv = time.perf_counter() - p.t0
        try:
            t0 = time.perf_counter()
            raw = codec.decompress(p.buf, str(p.meta.get("codec", "none")))
            t1 = time.perf_counter()
            arr = codec.decode(raw, p.meta)
            t2 = time.perf_counter()
            logits = self.infer(arr) if self.infer is not None else None
            t3 = time.perf_counter()
        except Exception as exc:  # the server must keep serving whatever one tensor did
            return _error(p.req_id, f"{type(exc).__name__}: {exc}")
        body: dict[str, Any] = {"id": p.req_id, "ok": True, "server": {
            "recv_s": t_recv, "decompress_s": t1 - t0, "decode_s": t2 - t1, "tail_s": t3 - t2}}
        if logits is None:  # sink mode (benchmarks): prove the tensor arrived intact
            body["checksum"] = float(np.asarray(arr, dtype=np.float64).sum()) if arr.size else 0.0
            body["logits_shape"] = None
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
    rpc_s: float           # header sent -> reply parsed, on the client's clock


class TensorClient:
    """One long-lived stream to the tail server; ``send`` is one tensor, one reply."""

    _STOP = object()

    def __init__(self, address: str, chunk: int = CHUNK, timeout: float = 30.0) -> None:
        import grpc

        self.address, self.chunk = address, chunk
        self.channel = grpc.insecure_channel(address, options=_OPTIONS)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError as exc:
            self.channel.close()
            raise WireError(f"no tail server answers at {address} within {timeout:.0f}s: is it "
                            "running and READY, and is the address reachable?") from exc
        self._infer = self.channel.stream_stream(INFER)
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._replies = self._infer(iter(self._q.get, self._STOP))
        self._next_id = 0

    def send_raw(self, messages: list[bytes] | Iterator[bytes]) -> Reply:
        """Put raw messages on the stream and wait for one reply (tests send malformed ones)."""
        t0 = time.perf_counter()
        for m in messages:
            self._q.put(m)
        try:
            msg = next(self._replies)
        except StopIteration as exc:
            raise WireError(f"the stream to {self.address} closed without a reply") from exc
        except Exception as exc:  # grpc.RpcError: name the server and the status
            raise WireError(f"stream to {self.address} failed: {exc}") from exc
        body, logits = parse_reply(msg)
        return Reply(body, logits, time.perf_counter() - t0)

    def send(self, data: bytes, meta: dict[str, Any], topk: int = 5, logits: bool = True) -> Reply:
        """Send one encoded, compressed tensor; raise WireError on an error reply."""
        self._next_id += 1
        req_id = self._next_id
        msgs = [header_message(req_id, len(data), meta, topk, logits), *chunk_messages(data, self.chunk)]
        reply = self.send_raw(msgs)
        if not reply.body.get("ok"):
            raise WireError(f"tail server {self.address} rejected tensor {req_id}: {reply.body.get('error')}")
        if reply.body.get("id") != req_id:
            raise WireError(f"reply for tensor {reply.body.get('id')!r} while waiting for {req_id}")
        return reply

    def measure_link(self, nbytes: int = 32 << 20) -> float:
        """Bytes per second of a one-way stream of ``nbytes`` (the link-throughput probe)."""
        payload = b"\0" * self.chunk
        count = max(1, nbytes // self.chunk)
        sink = self.channel.stream_unary(SINK)
        t0 = time.perf_counter()
        got = struct.unpack("<Q", sink(iter([payload] * count)))[0]
        return got / (time.perf_counter() - t0)

    def close(self) -> None:
        self._q.put(self._STOP)
        self.channel.close()

    def __enter__(self) -> "TensorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
