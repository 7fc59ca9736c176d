"""The wire's data plane: tensor bytes beside gRPC, on a side TCP socket or in shared memory.

Why (issue 21, numbers in docs/devicekit.md): every design that pushes tensor bytes through
Python gRPC costs 2-3x the CPU of a raw socket and reaches about half its throughput at
1 MiB; gRPC is kept for what it is good at (session set-up, errors, the fallback path) and
the bytes go where a raw ``sendall`` would put them.

Negotiation, over gRPC (unary ``/collab.split.Tail/Open``, JSON both ways):
  client -> {"want": "auto"|"tcp"|"shm", "probe": {"name", "nonce"}?}
  server -> {"token": hex, "port": int|null, "shm": bool, "error"?}
``port`` is the server's data listener (null: it could not open one), ``shm`` whether it
read the client's probe segment (same tmpfs: same host). The client then connects to the
port and first sends the 16-byte token (single use: one connection per session; anything
else is answered with an error frame and the connection closed). Frames on that socket:
  client -> server   REQUEST (below) + uint64 nbytes per tensor + the shm segment's name
                     (ASCII) + JSON list of the tensors' metas + the tensors' bytes (tcp only)
  server -> client   uint64 length + REPLY (below) + JSON of the reply's other fields (topk,
                     outputs, checksum, error...; none when empty) + the output tensors' bytes
A fixed binary header and reply, not wire.py's JSON ones: on a 16-byte tensor the JSON of
header and reply (and its timing fields) was most of the round trip. The server also takes
wire.py's JSON header (b"H" + uint32 length + JSON, ``"shm": name`` for shared memory) and
answers it with wire.py's JSON reply (b"R" ...), as it does errors that have no request.
With ``shm`` the tensors' bytes (of a request over 64 KiB; smaller ones go inline as on
TCP, one packet being cheaper than a copy and a mapping) lie at offset 0 of the named segment (one per request in
flight, grown by a new name), and only the header and reply cross the socket, so ordering,
ids and errors work as on TCP. A truncated frame (the client shuts its side mid-request)
is answered with an error; a malformed one too, and then the connection is closed (its
framing is lost); the server goes on either way.
"""
from __future__ import annotations

import functools
import io
import json
import queue
import socket
import struct
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np

from . import shm
from .codec import Buffer
from .wire import MAX_TENSORS, Part, WireError, output_views, parse_reply

TRANSPORTS = ("auto", "grpc", "tcp", "shm")
# b"B", flags (OUTPUTS, UNTIMED), topk, request id, tensors, shm name length, meta JSON length
REQUEST = struct.Struct("<cBHQHHI")
# b"S", flags (OK, TIMED), request id, SERVER_KEYS, length of the JSON of the other fields
REPLY = struct.Struct("<cBQ6dI")
# the same without the timings (flags without TIMED), answering a request flagged UNTIMED
LEAN_REPLY = struct.Struct("<cBQI")
OUTPUTS, UNTIMED = 1, 2   # request flags
OK, TIMED = 1, 2          # reply flags
SERVER_KEYS = ("recv_s", "decompress_s", "decode_s", "tail_s", "t_start", "t_end")
OPEN = "/collab.split.Tail/Open"
TOKEN_BYTES = 16
FRAME = struct.Struct("<Q")
SMALL = 64 << 10   # below this, header and data go out as one joined buffer (one packet)


def recv_exact(src: Any, view: Buffer) -> int:
    """Fill ``view`` from ``src`` (a socket, or its buffered ``makefile("rb")``, which reads a
    small frame whole in one system call); the bytes read (fewer only when the peer closed)."""
    if isinstance(src, io.BufferedReader):  # a blocking reader fills ``view`` itself, in C
        return src.readinto(view)
    view = memoryview(view).cast("B")
    got = 0
    while got < len(view):
        n = src.recv_into(view[got:])
        if not n:
            break
        got += n
    return got


def read_frame(src: Any, what: str) -> bytearray:
    """One length-prefixed frame (a reply), in its own buffer (outputs are views of it)."""
    head = bytearray(FRAME.size)
    if recv_exact(src, head) < FRAME.size:
        raise WireError(f"the data connection to {what} closed without a reply")
    body = bytearray(FRAME.unpack(head)[0])
    if recv_exact(src, body) < len(body):
        raise WireError(f"the data connection to {what} closed mid-reply")
    return body


def write_frame(sock: socket.socket, msg: bytes) -> None:
    sock.sendall(FRAME.pack(len(msg)) + msg)


@functools.lru_cache(maxsize=MAX_TENSORS)
def sizes_struct(count: int) -> struct.Struct:
    """The ``count`` uint64 tensor sizes after a REQUEST."""
    return struct.Struct(f"<{count}Q")


def request_header(req_id: int, sizes: Sequence[int], meta: bytes, topk: int, flags: int,
                   shm_name: bytes = b"") -> bytes:
    """A request's header (the tensors' bytes follow it, or lie in segment ``shm_name``);
    ``meta``: the JSON list of the tensors' metas; ``flags``: OUTPUTS | UNTIMED."""
    return b"".join((REQUEST.pack(b"B", flags, topk, req_id, len(sizes), len(shm_name), len(meta)),
                     sizes_struct(len(sizes)).pack(*sizes), shm_name, meta))


def request_flags(outputs: bool, timings: bool) -> int:
    return (OUTPUTS if outputs else 0) | (0 if timings else UNTIMED)


def parse_frame(msg: bytearray) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """A reply frame's body (wire.py's reply JSON, rebuilt) and output tensors (views of ``msg``)."""
    if msg[:1] != b"S":
        return parse_reply(msg)
    timed = len(msg) > 1 and msg[1] & TIMED
    fixed = REPLY if timed else LEAN_REPLY
    if len(msg) < fixed.size:
        raise WireError(f"server sent a reply of {len(msg)} bytes, shorter than its {fixed.size}-byte header")
    if timed:
        _, flags, req_id, *times, n = REPLY.unpack_from(msg)
        body: dict[str, Any] = {"id": req_id, "ok": bool(flags & OK), "server": dict(zip(SERVER_KEYS, times))}
    else:
        _, flags, req_id, n = LEAN_REPLY.unpack_from(msg)
        body = {"id": req_id, "ok": bool(flags & OK)}
    if not n:  # the common small reply: nothing but id, ok (and the timings)
        return body, None
    body.update(json.loads(msg[fixed.size:fixed.size + n]))
    return body, output_views(msg, body.get("outputs"), fixed.size + n)


def send_parts(sock: socket.socket, head: bytes, views: Sequence[memoryview], total: int) -> None:
    """Header then the ``total`` bytes of ``views``: in one ``sendall`` when small (one
    packet), else without joining big tensors (sendall of each view copies only into the
    kernel, like raw)."""
    if total <= SMALL:
        sock.sendall(b"".join((head, *views)))
        return
    sock.sendall(head)
    for v in views:
        sock.sendall(v)


class DataPlane:
    """One negotiated session: the side socket and, for ``shm``, this client's segments."""

    def __init__(self, sock: socket.socket, token: str, transport: str, address: str) -> None:
        self.sock, self.token, self.transport, self.address = sock, token, transport, address
        self.rfile = sock.makefile("rb", buffering=SMALL)
        self.segments: dict[int, shm.Segment] = {}
        self._generation = 0
        self._meta: tuple[Any, bytes] = (None, b"")   # the last metas sent (a copy) and their JSON

    def _meta_json(self, tensors: Sequence[Part]) -> bytes:
        """The tensors' metas as JSON; the last request's again when they compare equal (a
        stream of requests repeats its shapes, and comparing costs a tenth of encoding)."""
        metas = [meta for _, meta in tensors]
        if metas == self._meta[0]:
            return self._meta[1]
        blob = json.dumps(metas).encode()
        self._meta = (json.loads(blob), blob)
        return blob

    def _segment(self, slot: int, size: int) -> shm.Segment:
        seg = self.segments.get(slot)
        if seg is None or seg.size < size:
            if seg is not None:
                seg.close()
            self._generation += 1
            grown = max(size, 2 * seg.size if seg is not None else 0, 1 << 16)
            seg = self.segments[slot] = shm.Segment(shm.segment_name(self.token, slot, self._generation), grown)
        return seg

    def put(self, req_id: int, tensors: Sequence[Part], topk: int, flags: int, slot: int = 0) -> None:
        """Write one request (its reply is read by :meth:`get`); ``flags``: :func:`request_flags`."""
        views = [memoryview(d).cast("B") for d, _ in tensors]
        sizes = [len(v) for v in views]
        metas = self._meta_json(tensors)
        topk = max(0, min(topk, 0xFFFF))
        total = sum(sizes)
        if self.transport == "shm" and total > SMALL:  # small ones: one packet is cheaper
            seg = self._segment(slot, total)
            at = 0
            for v in views:
                seg.map[at:at + len(v)] = v
                at += len(v)
            self.sock.sendall(request_header(req_id, sizes, metas, topk, flags, seg.name.encode()))
        else:
            send_parts(self.sock, request_header(req_id, sizes, metas, topk, flags), views, total)

    def get(self) -> tuple[dict[str, Any], list[np.ndarray] | None]:
        """The next reply's body and outputs."""
        return parse_frame(read_frame(self.rfile, self.address))

    def exchange(self, req_id: int, tensors: Sequence[Part], topk: int, outputs: bool,
                 timings: bool = True) -> tuple[dict[str, Any], list[np.ndarray] | None, float]:
        """One request, its reply's body and outputs, and the seconds from writing to parsed."""
        t0 = time.perf_counter()
        self.put(req_id, tensors, topk, request_flags(outputs, timings))
        body, arrays = self.get()
        return body, arrays, time.perf_counter() - t0

    def pipelined(self, requests: Iterator[tuple[Any, Sequence[Part]]], window: int, topk: int, outputs: bool,
                  timings: bool = True) -> Iterator[tuple[Any, dict[str, Any], list[np.ndarray] | None, float]]:
        """Up to ``window`` requests awaiting replies; a thread writes (as raw's bench does),
        so a large request never waits behind a reply the caller has not read yet."""
        flags = request_flags(outputs, timings)
        slots = threading.Semaphore(window)
        sent: queue.SimpleQueue[tuple[Any, float] | None] = queue.SimpleQueue()
        failure: list[BaseException] = []
        stop = threading.Event()

        def writer() -> None:
            try:
                for i, (req_id, tensors) in enumerate(requests):
                    slots.acquire()
                    if stop.is_set():
                        break
                    sent.put((req_id, time.perf_counter()))
                    self.put(req_id, tensors, topk, flags, slot=i % window)
            except BaseException as exc:  # surfaced to the caller once the replies are read
                failure.append(exc)
            sent.put(None)

        thread = threading.Thread(target=writer, daemon=True, name="wire-writer")
        thread.start()
        try:
            while (item := sent.get()) is not None:
                body, arrays = self.get()
                yield item[0], body, arrays, time.perf_counter() - item[1]
                slots.release()
        finally:
            stop.set()
            for _ in range(window):
                slots.release()
            thread.join(5)
        if failure:
            raise failure[0]

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        finally:
            for seg in self.segments.values():
                seg.close()


def connect(host: str, port: int, token: str, transport: str, address: str, timeout: float) -> DataPlane:
    """Open the side socket and present the token; OSError when the port refuses."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(bytes.fromhex(token))
    return DataPlane(sock, token, transport, address)


async def negotiate(channel: Any, address: str, want: str, timeout: float) -> tuple[DataPlane | None, str]:
    """Agree on a transport over ``channel``; (None, "grpc") means stay on the gRPC stream.

    ``auto``: shared memory if the server reads our probe, else the side socket, else gRPC.
    An explicit ``tcp``/``shm`` that cannot be had is a WireError naming why.
    """
    if want not in TRANSPORTS:
        raise WireError(f"unknown transport {want!r}; choose one of {', '.join(TRANSPORTS)}")
    if want == "grpc":
        return None, "grpc"
    import grpc

    probe = shm.write_probe() if want in ("auto", "shm") and shm.available() else None
    try:
        request = {"want": want, "probe": {"name": probe[0].name, "nonce": probe[1]} if probe else None}
        try:
            raw = await channel.unary_unary(OPEN)(json.dumps(request).encode(), timeout=timeout)
            offer = json.loads(raw)
        except grpc.RpcError as exc:  # an older tail without a data plane
            if want == "auto":
                return None, "grpc"
            raise WireError(f"tail server {address} offers no data plane ({exc.code()}): use --split-transport "
                            "grpc or auto") from exc
    finally:
        if probe:
            probe[0].close()
    transport = "shm" if offer.get("shm") and want != "tcp" else "tcp"
    if want == "shm" and transport != "shm":
        raise WireError(f"--split-transport shm but tail server {address} cannot map this host's "
                        f"{shm.SHM_DIR} (another host or container): use tcp or auto")
    if offer.get("port") is None:
        if want == "auto":
            return None, "grpc"
        raise WireError(f"tail server {address} could not open a data port ({offer.get('error')}): use grpc or auto")
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return connect(host, int(offer["port"]), str(offer["token"]), transport, address, timeout), transport
    except OSError as exc:
        if want == "auto":
            return None, "grpc"
        raise WireError(f"data port {host}:{offer['port']} of tail server {address} refused: {exc} "
                        "(a firewall?): use --split-transport grpc or auto") from exc
