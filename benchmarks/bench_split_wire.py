"""Tensor path vs raw TCP sendall, side by side on loopback, for 1, 4 and 16 MiB tensors.

Tensor path = encode + compress + send (1 MiB chunks on one gRPC stream) + receive +
decompress + decode (+ a checksum on the server, so the data is proven to arrive) + reply.
Raw = socket.sendall of the same bytes + a 1-byte ack. Medians of 9 after a warm-up;
the ratio is tensor-path throughput / raw throughput (target >= 0.85 from 1 MiB up).

    .venv/bin/python benchmarks/bench_split_wire.py [--reps 9] [--codec none]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASE = Path(__file__).resolve().parents[1] / "testcases" / "split_resnet"
sys.path.insert(0, str(CASE))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

import codec  # noqa: E402
import split_helpers  # noqa: E402
import wire  # noqa: E402

RAW_SERVER = r"""
import socket, struct, sys
srv = socket.create_server(("127.0.0.1", 0)); print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = bytearray(64 << 20); view = memoryview(buf)
while True:
    head = conn.recv(8, socket.MSG_WAITALL)
    if len(head) < 8: break
    n = struct.unpack("<Q", head)[0]; got = 0
    while got < n:
        got += conn.recv_into(view[got:n], n - got)
    conn.sendall(b"k")
"""


def raw_times(sizes: list[int], reps: int) -> dict[int, float]:
    import struct

    proc = subprocess.Popen([sys.executable, "-c", RAW_SERVER], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = {}
    for size in sizes:
        data = np.random.default_rng(0).bytes(size)
        times = []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            sock.sendall(struct.pack("<Q", size))
            sock.sendall(data)
            assert sock.recv(1) == b"k"
            if i:
                times.append(time.perf_counter() - t0)
        out[size] = statistics.median(times)
    sock.close()
    proc.wait(10)
    return out


def tensor_times(sizes: list[int], reps: int, comp: codec.Compression) -> dict[int, float]:
    proc, port = split_helpers.start_tail("--sink")
    out = {}
    with wire.TensorClient(f"127.0.0.1:{port}") as client:
        for size in sizes:
            arr = np.random.default_rng(0).standard_normal(size // 4).astype(np.float32)
            times = []
            for i in range(reps + 1):
                t0 = time.perf_counter()
                data, meta = codec.pack(arr, "fp32", comp)
                client.send(data, meta, logits=False)
                if i:
                    times.append(time.perf_counter() - t0)
            out[size] = statistics.median(times)
    split_helpers.stop(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--codec", default="none", help="blosc2 codec for the tensor path (default none: "
                    "random data does not compress, so this isolates the transport)")
    args = ap.parse_args()
    sizes = [1 << 20, 4 << 20, 16 << 20]
    comp = codec.Compression(args.codec)
    raw = raw_times(sizes, args.reps)
    tensor = tensor_times(sizes, args.reps, comp)
    print(f"{'size':>8} {'raw MB/s':>10} {'tensor MB/s':>12} {'ratio':>6}   (medians of {args.reps}, codec={args.codec})")
    for s in sizes:
        r, t = s / raw[s] / 1e6, s / tensor[s] / 1e6
        print(f"{s >> 20:>5} MiB {r:>10.0f} {t:>12.0f} {t / r:>6.2f}")


if __name__ == "__main__":
    main()
