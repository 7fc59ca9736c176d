"""The tail's half of the data plane (protocol in dataplane.py): the Open handshake served
over gRPC, a TCP listener, and one blocking thread per connection.

Why threads and blocking ``recv_into``, not asyncio: that is what the raw-socket baseline
does, and the data plane's point is to cost what raw costs; a request's bytes land in one
reused buffer (TCP) or are read in place from the client's segment (shm), and the reply
goes back on the same socket. Inference itself stays one at a time (TailService.lock).
"""
from __future__ import annotations

import collections
import json
import mmap
import re
import secrets
import socket
import threading
import time
from typing import Any

import numpy as np

from . import codec, shm
from .dataplane import (
    FRAME,
    LEAN_REPLY,
    OK,
    OUTPUTS,
    REPLY,
    REQUEST,
    SERVER_KEYS,
    TIMED,
    TOKEN_BYTES,
    UNTIMED,
    recv_exact,
    sizes_struct,
    write_frame,
)
from .tail_service import Request, TailService, _error, _parse_header, error_body
from .wire import LENGTH, MAX_REQUEST, MAX_TENSORS, WireError, output_arrays, reply_message

MAX_HEADER = 1 << 20      # JSON of a header; more is garbage, not a tensor list
MAX_METAS = 64           # distinct meta JSONs a connection keeps parsed
MAX_SESSIONS = 1024       # offered but never connected: the oldest are forgotten
TOKEN_WAIT_S = 10.0
HANG_UP_S = 2.0           # how long a dropped connection's unread bytes are drained


class DataServer:
    """Sessions offered over gRPC and the side port that serves them."""

    def __init__(self, service: TailService, bind: str, port: int | None) -> None:
        self.service = service
        self.sessions: collections.OrderedDict[str, bool] = collections.OrderedDict()  # token -> shm allowed
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.error = "disabled (--data-port -1)" if port is None else ""
        if port is not None:
            try:
                self.listener = socket.create_server((bind, port))
            except OSError as exc:  # the side port cannot be opened: clients stay on gRPC
                self.error = f"could not bind {bind}:{port}: {exc}"
        if self.listener is not None:
            threading.Thread(target=self._accept, args=(self.listener,), daemon=True, name="data-accept").start()

    @property
    def port(self) -> int | None:
        return self.listener.getsockname()[1] if self.listener is not None else None

    async def open(self, request: bytes, context: Any) -> bytes:
        """gRPC ``Open``: a fresh session token, the port, whether shared memory works."""
        try:
            want = json.loads(request)
            probe = want.get("probe") or {}
        except (ValueError, AttributeError):
            want, probe = {}, {}
        token = secrets.token_hex(TOKEN_BYTES)
        shared = bool(probe) and shm.read_probe(str(probe.get("name", "")), str(probe.get("nonce", "")))
        with self.lock:
            self.sessions[token] = shared
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        return json.dumps({"token": token, "port": self.port, "shm": shared, "error": self.error or None}).encode()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: the server stops
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True, name="data-conn").start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                token = self._session(conn)
                if token is not None:
                    Connection(self, conn, token).serve()
                _hang_up(conn)
            except OSError:  # the client went away; the server goes on
                pass

    def _session(self, conn: socket.socket) -> str | None:
        """The connection's token if it is an offered, unused one; else an error frame."""
        conn.settimeout(TOKEN_WAIT_S)
        raw = bytearray(TOKEN_BYTES)
        got = recv_exact(conn, memoryview(raw))
        conn.settimeout(None)
        token = raw.hex()
        with self.lock:
            shared = self.sessions.pop(token, None) if got == TOKEN_BYTES else None
        if shared is None:
            write_frame(conn, _error(None, "rejected: the connection did not start with a session token offered "
                                           "by Open (open the session over gRPC first)"))
            return None
        return token + ("+shm" if shared else "")

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()


def compact_reply(body: dict[str, Any], outputs: list[np.ndarray] | None) -> bytes:
    """A whole frame (length, REPLY or LEAN_REPLY without timings, other fields' JSON,
    outputs) answering a binary request."""
    server = body.get("server")
    data: list[memoryview] = []
    if outputs is None and len(body) == (3 if server else 2):  # only id, ok (and timings): no JSON
        blob = b""
    else:
        extra = {k: v for k, v in body.items() if k not in ("id", "ok", "server")}
        if outputs is not None:
            extra["outputs"], data = output_arrays(outputs)
        blob = json.dumps(extra).encode() if extra else b""
    flags = OK if body["ok"] else 0
    if server:
        head = REPLY.pack(b"S", flags | TIMED, body["id"], *[server[k] for k in SERVER_KEYS], len(blob))
    else:
        head = LEAN_REPLY.pack(b"S", flags, body["id"], len(blob))
    return b"".join((FRAME.pack(len(head) + len(blob) + sum(map(len, data))), head, blob, *data))


def _hang_up(conn: socket.socket) -> None:
    """Close so that the last (error) frame reaches the client: closing with its unread
    bytes still queued would send a reset, which can discard that frame on the way."""
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(HANG_UP_S)
    sink = bytearray(1 << 16)
    try:
        while conn.recv_into(sink):
            pass
    except OSError:
        pass


class Connection:
    """One session's socket: read a frame, answer it, until the client closes."""

    def __init__(self, server: DataServer, conn: socket.socket, session: str) -> None:
        self.server, self.conn = server, conn
        self.rfile = conn.makefile("rb", buffering=1 << 16)   # a small frame in one recv
        self.token, _, flag = session.partition("+")
        self.names = re.compile(shm.name_pattern(self.token).pattern) if flag == "shm" else None
        self.buf = np.empty(0, np.uint8)
        # meta JSON -> parsed (read-only), and their decoders (None: one is unusable, the
        # request's reply says why)
        self.metas: dict[bytes, tuple[list[dict[str, Any]], list[codec.Decoder] | None]] = {}
        self.maps: dict[str, tuple[str, mmap.mmap]] = {}   # slot -> (segment name, mapping)

    def serve(self) -> None:
        try:
            while self._one():
                pass
        finally:
            self.rfile.close()
            for _, m in self.maps.values():
                try:
                    m.close()
                except BufferError:
                    pass

    def _one(self) -> bool:
        """Answer one frame; False when the connection is done (closed, or framing lost)."""
        head = self.rfile.read(5)
        if not head:
            return False
        try:
            request = self._binary(head) if head[:1] == b"B" else self._json(head)
        except WireError as exc:
            write_frame(self.conn, _error(None, str(exc)))
            return False
        compact = head[:1] == b"B"
        if request.shm is not None:
            error = self._mapped(request)
            if error:
                self._reply(error_body(request.req_id, error), None, compact)
                return True   # no bytes followed the header: the framing holds
        elif not self._received(request):
            self._reply(error_body(request.req_id, f"truncated: the connection ended after {request.got} of "
                                                   f"{request.nbytes} bytes of request {request.req_id!r}"),
                        None, compact)
            return False
        self._reply(*self.server.service.result(request), compact)
        return True

    def _reply(self, body: dict[str, Any], outputs: list[np.ndarray] | None, compact: bool) -> None:
        """A binary reply to a binary request, wire.py's JSON reply to a JSON one."""
        if compact:
            self.conn.sendall(compact_reply(body, outputs))
        else:
            write_frame(self.conn, reply_message(body, outputs))

    def _read(self, n: int, what: str) -> bytes:
        data = self.rfile.read(n)
        if len(data) < n:
            raise WireError(f"truncated: the connection ended inside a {what}")
        return data

    def _json(self, head: bytes) -> Request:
        """wire.py's header: b"H" + uint32 length + JSON."""
        if len(head) < 5 or head[:1] != b"H":
            raise WireError(f"truncated: the connection ended {len(head)} bytes into a frame" if len(head) < 5 else
                            f"malformed: frame of kind {head[:1]!r} (expected b'B' or b'H')")
        (n,) = LENGTH.unpack_from(head, 1)
        if n > MAX_HEADER:
            raise WireError(f"malformed: header JSON of {n} bytes (at most {MAX_HEADER})")
        return _parse_header(head + self._read(n, f"{n}-byte header"))[0]

    def _binary(self, head: bytes) -> Request:
        """dataplane.py's REQUEST header, sizes, segment name and metas (parsed once per
        distinct JSON: a stream of requests repeats the same shapes)."""
        fixed = head + self._read(REQUEST.size - len(head), f"{REQUEST.size}-byte header")
        _, flags, topk, req_id, count, name_len, meta_len = REQUEST.unpack(fixed)
        if not 1 <= count <= MAX_TENSORS or meta_len > MAX_HEADER:
            raise WireError(f"malformed header: {count} tensors (a request carries 1..{MAX_TENSORS}), "
                            f"{meta_len} bytes of meta JSON (at most {MAX_HEADER})")
        at = 8 * count + name_len
        rest = self._read(at + meta_len, f"{at + meta_len}-byte tensor list")
        sizes = sizes_struct(count).unpack_from(rest)
        blob = rest[at:]
        parsed = self.metas.get(blob)
        if parsed is None:
            parsed = self.metas[blob] = self._parse_metas(blob, count)
        if sum(sizes) > MAX_REQUEST:
            raise WireError(f"malformed header: tensor sizes {list(sizes)} outside 0..{MAX_REQUEST} in all")
        name = rest[8 * count:at].decode("ascii", "replace") if name_len else None
        return Request(req_id, list(zip(sizes, parsed[0])), topk, bool(flags & OUTPUTS), time.perf_counter(),
                       shm=name, timed=not flags & UNTIMED, decoders=parsed[1])

    def _parse_metas(self, blob: bytes, count: int) -> tuple[list[dict[str, Any]], list[codec.Decoder] | None]:
        try:
            metas = json.loads(blob)
        except ValueError as exc:
            raise WireError(f"malformed header: meta JSON ({exc})") from exc
        if not isinstance(metas, list) or len(metas) != count or not all(isinstance(m, dict) for m in metas):
            raise WireError(f"malformed header: meta JSON is not a list of {count} objects")
        if len(self.metas) >= MAX_METAS:
            self.metas.clear()
        try:
            return metas, [codec.decoder(m) for m in metas]
        except codec.CodecError:  # TailService.result decodes again and replies with the reason
            return metas, None

    def _received(self, request: Request) -> bool:
        """Read the request's bytes into the connection's reused buffer."""
        if len(self.buf) < request.nbytes:
            self.buf = np.empty(request.nbytes, np.uint8)
        view = self.buf.data[:request.nbytes]
        request.got = recv_exact(self.rfile, view)
        request.data = view
        return request.got == request.nbytes

    def _mapped(self, request: Request) -> str:
        """Point the request at its bytes in the client's segment; an error text, or ''."""
        name = str(request.shm)
        if self.names is None or not self.names.fullmatch(name):
            return f"rejected: shared-memory segment {name!r} is not this session's (or shm was not negotiated)"
        slot = name.rsplit("-", 2)[1]
        known = self.maps.get(slot)
        if known is None or known[0] != name:
            try:
                mapping = shm.open_segment(name)
            except OSError as exc:
                return f"cannot map shared-memory segment {name!r}: {exc}"
            if known is not None:
                try:
                    known[1].close()
                except BufferError:
                    pass
            known = self.maps[slot] = (name, mapping)
        if request.nbytes > len(known[1]):
            return f"truncated: header says {request.nbytes} bytes, segment {name!r} holds {len(known[1])}"
        request.data, request.got = memoryview(known[1])[:request.nbytes], request.nbytes
        return ""
