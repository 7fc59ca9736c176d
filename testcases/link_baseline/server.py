"""link_baseline server: a raw TCP sink and a gRPC sink, each acknowledging every payload.

Prints ``READY tcp=<port> grpc=<port>`` once both accept connections.
"""
from __future__ import annotations

import argparse
import signal
import socket
import threading
from concurrent import futures

from linkproto import ACK, GRPC_METHOD, GRPC_OPTIONS, HEADER, identity, recv_exactly


def serve_tcp_connection(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(1 << 20)
    with conn:
        while True:
            try:
                (size,) = HEADER.unpack(recv_exactly(conn, HEADER.size))
            except ConnectionError:
                return
            left = size
            while left:
                left -= len(recv_exactly(conn, min(left, len(buf)), buf))
            conn.sendall(ACK.pack(size))


def start_tcp(bind: str, port: int) -> socket.socket:
    listener = socket.create_server((bind, port), backlog=16)

    def accept_loop() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve_tcp_connection, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return listener


def start_grpc(bind: str, port: int):
    import grpc

    def send(request: bytes, context) -> bytes:
        return ACK.pack(len(request))

    handler = grpc.method_handlers_generic_handler(
        GRPC_METHOD.split("/")[1],
        {GRPC_METHOD.split("/")[2]: grpc.unary_unary_rpc_method_handler(
            send, request_deserializer=identity, response_serializer=identity)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{bind}:{port}")
    server.start()
    return server, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--tcp-port", type=int, default=0)
    parser.add_argument("--grpc-port", type=int, default=0)
    args = parser.parse_args()
    listener = start_tcp(args.bind, args.tcp_port)
    server, grpc_port = start_grpc(args.bind, args.grpc_port)
    print(f"READY tcp={listener.getsockname()[1]} grpc={grpc_port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1)


if __name__ == "__main__":
    main()
