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
from typing import Any

import numpy as np

from . import shm
from .dataplane import TOKEN_BYTES, recv_exact, write_frame
from .tail_service import Request, TailService, _error, _parse_header
from .wire import LENGTH, WireError

MAX_HEADER = 1 << 20      # JSON of a header; more is garbage, not a tensor list
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
        head = bytearray(5)
        got = recv_exact(self.rfile, memoryview(head))
        if got == 0:
            return False
        if got < 5 or head[:1] != b"H":
            reason = f"truncated: the connection ended {got} bytes into a frame" if got < 5 else \
                f"malformed: frame of kind {bytes(head[:1])!r} (expected b'H')"
            write_frame(self.conn, _error(None, reason))
            return False
        (n,) = LENGTH.unpack_from(head, 1)
        if n > MAX_HEADER:
            write_frame(self.conn, _error(None, f"malformed: header JSON of {n} bytes (at most {MAX_HEADER})"))
            return False
        text = bytearray(n)
        if recv_exact(self.rfile, memoryview(text)) < n:
            write_frame(self.conn, _error(None, f"truncated: the connection ended inside a {n}-byte header"))
            return False
        try:
            request, _ = _parse_header(bytes(head + text))
        except WireError as exc:
            write_frame(self.conn, _error(None, str(exc)))
            return False
        if request.shm is not None:
            error = self._mapped(request)
            if error:
                write_frame(self.conn, _error(request.req_id, error))
                return True   # no bytes followed the header: the framing holds
        elif not self._received(request):
            write_frame(self.conn, _error(request.req_id, f"truncated: the connection ended after {request.got} of "
                                                          f"{request.nbytes} bytes of request {request.req_id!r}"))
            return False
        write_frame(self.conn, self.server.service._answer(request))
        return True

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
