"""The two transports link_baseline measures, shared by its server and client.

A probe sends ``size`` payload bytes one way and waits for an 8-byte acknowledgement,
the shape of a split-inference transfer (big tensor out, small reply back).
Needs only the standard library and grpcio, so it runs on any device.
"""
from __future__ import annotations

import socket
import struct

HEADER = struct.Struct("!Q")        # payload size, network order
ACK = struct.Struct("!Q")           # bytes received, echoed back
GRPC_METHOD = "/collab.link.Link/Send"
GRPC_MAX_MESSAGE = 64 * 1024 * 1024  # a baseline measures the link, not gRPC's default limit
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
    ("grpc.max_send_message_length", GRPC_MAX_MESSAGE),
]


def recv_exactly(sock: socket.socket, n: int, buf: bytearray | None = None) -> memoryview:
    """Read exactly ``n`` bytes (into ``buf`` when given, to avoid an allocation per probe)."""
    view = memoryview(buf if buf is not None and len(buf) >= n else bytearray(n))[:n]
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError(f"peer closed after {got} of {n} bytes")
        got += k
    return view


def identity(data: bytes) -> bytes:
    return data
