"""link_baseline client: round-trip time and throughput per message size, over TCP or gRPC.

Prints one ``COLLAB_RESULT {json}`` line per (transport, size), through the device kit's
emitter; percentiles are the kit's (nearest rank, the same as every split experiment's).
The largest size is also sent after idle spells (``rtt_idle_p50_ms``): a shaped link's
burst shows as the difference.
"""
from __future__ import annotations

import argparse
import os
import socket
import time
from typing import Callable

from collab_devicekit.emit import emit
from collab_devicekit.stats import nearest_rank
from linkproto import ACK, GRPC_METHOD, GRPC_OPTIONS, HEADER, identity, recv_exactly

KIB = 1024


def tcp_probe(host: str, port: int) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ack = bytearray(ACK.size)

    def probe(payload: bytes) -> None:
        sock.sendall(HEADER.pack(len(payload)))
        sock.sendall(payload)
        (got,) = ACK.unpack(recv_exactly(sock, ACK.size, ack))
        assert got == len(payload), f"server acknowledged {got} of {len(payload)} bytes"

    return probe, sock.close


def grpc_probe(host: str, port: int) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}", options=GRPC_OPTIONS)
    call = channel.unary_unary(GRPC_METHOD, request_serializer=identity, response_deserializer=identity)

    def probe(payload: bytes) -> None:
        (got,) = ACK.unpack(call(payload, timeout=60))
        assert got == len(payload), f"server acknowledged {got} of {len(payload)} bytes"

    return probe, channel.close


def measure(probe: Callable[[bytes], None], size: int, repeats: int, budget_s: float) -> dict:
    payload = os.urandom(size)
    for _ in range(2):  # warm-up: connection set-up and buffer growth are not the link
        probe(payload)
    rtts: list[float] = []
    t_start = time.time()   # this device's clock, like metrics.parquet's samples
    deadline = time.perf_counter() + budget_s
    while len(rtts) < repeats and (len(rtts) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        probe(payload)
        rtts.append(time.perf_counter() - start)
    t_end = time.time()
    median = nearest_rank(rtts, 50)
    return {
        "size_bytes": size,
        "t_start": t_start,
        "t_end": t_end,
        "samples": len(rtts),
        "rtt_ms": [r * 1e3 for r in rtts],
        "rtt_p50_ms": median * 1e3,
        "rtt_p90_ms": nearest_rank(rtts, 90) * 1e3,
        "rtt_p99_ms": nearest_rank(rtts, 99) * 1e3,
        "throughput_mbps": size * 8 / median / 1e6,
        "throughput_mean_mbps": size * 8 * len(rtts) / sum(rtts) / 1e6,
    }


def idle_probe(probe: Callable[[bytes], None], size: int, repeats: int, back_to_back_s: float) -> dict:
    """The same message after an idle spell (as long as one back-to-back send, 0.3-2 s): on a
    token-bucket link (a shaped uplink, tbf) the bucket refills meanwhile and its depth
    crosses at line rate, so the send is faster by depth / rate. The planner reads the
    difference as the link's burst (pytest_collab.split.profile.link_from_rows)."""
    payload = os.urandom(size)
    gap = min(max(back_to_back_s, 0.3), 2.0)
    rtts = []
    for _ in range(repeats):
        time.sleep(gap)
        start = time.perf_counter()
        probe(payload)
        rtts.append(time.perf_counter() - start)
    return {"rtt_idle_p50_ms": nearest_rank(rtts, 50) * 1e3, "idle_gap_s": gap, "idle_samples": len(rtts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True, help="server address")
    parser.add_argument("--transport", choices=("tcp", "grpc"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sizes", default="1,16,256,1024,4096,16384", help="KiB, comma separated")
    parser.add_argument("--repeats", type=int, default=200, help="samples per size at most")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per size at most")
    parser.add_argument("--idle-probes", type=int, default=5,
                        help="sends of the largest size after an idle spell, to measure a burst (0 = none)")
    args = parser.parse_args()
    factory = tcp_probe if args.transport == "tcp" else grpc_probe
    probe, close = factory(args.server, args.port)
    try:
        sizes = [int(s) * KIB for s in args.sizes.split(",")]
        for size in sizes:
            row = measure(probe, size, args.repeats, args.budget)
            if size == max(sizes) and args.idle_probes > 0:
                row.update(idle_probe(probe, size, args.idle_probes, row["rtt_p50_ms"] / 1e3))
            emit({"transport": args.transport, **row})
    finally:
        close()


if __name__ == "__main__":
    main()
