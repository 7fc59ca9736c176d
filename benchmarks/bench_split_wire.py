"""Each wire transport against raw TCP ``sendall``, interleaved on loopback, for 1, 4 and
16 MiB tensors and a 16-byte one.

Every variant is timed the same way (issue 21: raw used to be a median of single sends,
gRPC a loop): a batch of back-to-back round trips of the same wire bytes, one reply per
tensor, wall time and CPU seconds of both ends (all threads) per batch, the variants in a
rotated order within each round so all see the same machine load; figures are medians over
rounds after one warm-up round.

  raw   socket.sendall(8-byte length + the bytes) to a receiver that reads them into one
        reused buffer (the best a socket does) and answers 1 byte;
  grpc  wire.TensorClient over the gRPC stream (1 MiB chunks) to ``split_tail --sink``;
  tcp   the same client on the data plane's side socket (dataplane.py);
  shm   the same client through a shared-memory segment, header and reply on the socket.
The sink decodes (a view, codec none) and skips the checksum; nothing is subtracted from
any round trip. The replies leave out the server's timings (``send(timings=False)``: no one
reads them here, as raw's 1-byte ack has none); the 16-byte size also runs ``tcp+timings``,
the reply split_head asks for. ``ratio`` = raw seconds / transport seconds (> 1: faster than raw);
``CPU-s/GB`` counts both processes. The last line is the minimum ratio over >= 1 MiB of
the transport ``auto`` picks here.

    .venv/bin/python benchmarks/bench_split_wire.py [--reps 7] [--batch-mib 48]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import split_helpers  # noqa: E402

from pytest_collab.devicekit import codec, heap, wire  # noqa: E402

SIZES = [16, 1 << 20, 4 << 20, 16 << 20]
TRANSPORTS = ("grpc", "tcp", "shm")
TIMED = "tcp+timings"   # 16 bytes only: the reply with the server's timings (what split_head reads)
RAW_SERVER = r"""
import socket, struct
srv = socket.create_server(("127.0.0.1", 0)); print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
view = memoryview(bytearray(64 << 20))
while True:
    head = conn.recv(8, socket.MSG_WAITALL)
    if len(head) < 8: break
    n, got = struct.unpack("<Q", head)[0], 0
    while got < n:
        got += conn.recv_into(view[got % len(view):][:n - got])
    conn.sendall(b"k")
"""


class RawLink:
    """A plain TCP connection to a receiver subprocess: the baseline."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", RAW_SERVER], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.sock = socket.create_connection(("127.0.0.1", int(self.proc.stdout.readline())))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: memoryview) -> None:
        """Length + data, then wait for the 1-byte ack."""
        if len(data) < 1 << 16:
            self.sock.sendall(struct.pack("<Q", len(data)) + bytes(data))
        else:
            self.sock.sendall(struct.pack("<Q", len(data)))
            self.sock.sendall(data)
        if self.sock.recv(1) != b"k":
            raise RuntimeError("raw receiver closed the connection")

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(10)


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of this process, or of all threads of process ``pid`` (the scheduler's
    per-thread runtime in ns; /proc/PID/stat counts 10 ms ticks)."""
    if pid is None:
        return time.process_time()
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            pass
    return total / 1e9


def batch(send: Callable[[], object], count: int, server_pid: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of both ends) per round trip, over ``count`` of them."""
    c0, s0, t0 = cpu_seconds(), cpu_seconds(server_pid), time.perf_counter()
    for _ in range(count):
        send()
    wall = time.perf_counter() - t0
    return wall / count, (cpu_seconds() - c0 + cpu_seconds(server_pid) - s0) / count


def measure(reps: int, batch_bytes: int) -> tuple[dict[int, dict[str, list[tuple[float, float]]]], str]:
    """Per size, per variant: (seconds, CPU seconds) per round trip of each measured round."""
    raw = RawLink()
    proc, port = split_helpers.start_tail("--sink", "--no-checksum")
    address = f"127.0.0.1:{port}"
    clients = {t: wire.TensorClient(address, transport=t) for t in TRANSPORTS}
    with wire.TensorClient(address) as probe:
        default = probe.transport
    payloads = {s: codec.pack(np.random.default_rng(s).integers(0, 255, s, dtype=np.uint8), "raw",
                              codec.Compression("none")) for s in SIZES}
    out: dict[int, dict[str, list[tuple[float, float]]]] = {s: {} for s in SIZES}
    names = ["raw", *TRANSPORTS]
    try:
        for rep in range(reps + 1):
            for size, part in payloads.items():
                count = 400 if size < 1 << 20 else max(3, batch_bytes // size)
                variants = names if size >= 1 << 20 else [*names, TIMED]
                order = variants[rep % len(variants):] + variants[:rep % len(variants)]
                for name in order:
                    if name == "raw":
                        got = batch(lambda: raw.send(memoryview(part[0])), count, raw.proc.pid)
                    else:
                        client, timings = clients[name.split("+")[0]], name == TIMED
                        got = batch(lambda: client.send([part], outputs=False, timings=timings), count, proc.pid)
                    if rep:  # the first round warms every connection and buffer up
                        out[size].setdefault(name, []).append(got)
    finally:
        for c in clients.values():
            c.close()
        split_helpers.stop(proc)
        raw.close()
    return out, default


def report(out: dict[int, dict[str, list[tuple[float, float]]]], default: str, reps: int,
           load: tuple[float, float]) -> str:
    def med(size: int, name: str, i: int) -> float:
        return statistics.median(x[i] for x in out[size][name])

    lines = [f"medians of {reps} interleaved rounds, each a batch of round trips (reply per tensor), timed the "
             f"same way for every variant; load average {load[0]:.2f} before, {load[1]:.2f} after "
             f"({os.cpu_count()} cores)",
             f"{'size':>8} {'variant':>8} {'MB/s':>7} {'ratio':>6} {'CPU-s/GB':>9} {'CPU vs raw':>11}"]
    ratios: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    for size in SIZES[1:]:
        raw_s, raw_cpu = med(size, "raw", 0), med(size, "raw", 1) / size * 1e9
        lines.append(f"{size >> 20:>5} MiB {'raw':>8} {size / raw_s / 1e6:>7.0f} {1:>6.2f} {raw_cpu:>9.3f} {1:>11.2f}")
        for t in TRANSPORTS:
            s, cpu = med(size, t, 0), med(size, t, 1) / size * 1e9
            ratios[t].append(raw_s / s)
            lines.append(f"{'':>8} {t:>8} {size / s / 1e6:>7.0f} {raw_s / s:>6.2f} {cpu:>9.3f} "
                         f"{cpu / raw_cpu:>11.2f}")
    raw_rtt = med(SIZES[0], "raw", 0)
    lines.append("16-byte round trip: raw {:.3f} ms; ".format(raw_rtt * 1e3) + ", ".join(
        f"{t} {med(SIZES[0], t, 0) * 1e3:.3f} ms ({med(SIZES[0], t, 0) / raw_rtt:.1f}x raw)"
        for t in (*TRANSPORTS, TIMED)))
    raw_cpu = med(SIZES[0], "raw", 1)
    lines.append("16-byte CPU of both ends per round trip: raw {:.3f} ms; ".format(raw_cpu * 1e3) + ", ".join(
        f"{t} {med(SIZES[0], t, 1) * 1e3:.3f} ms ({med(SIZES[0], t, 1) / raw_cpu:.1f}x)" for t in (*TRANSPORTS, TIMED)))
    lines.append("ratio min over >=1 MiB: " + ", ".join(f"{t} {min(r):.2f}" for t, r in ratios.items())
                 + f"; auto picks {default} here (one host; tcp between two)")
    lines.append(f"wire ratio min over >=1 MiB: {min(ratios[default]):.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--reps", type=int, default=7, help="measured rounds (default 7)")
    ap.add_argument("--batch-mib", type=int, default=48, help="MiB per timed batch of a size (default 48)")
    args = ap.parse_args()
    # This process is the sending device (split_head does the same); the raw sender shares it.
    print(f"client {heap.keep_freed_heap(heap.DEFAULT_PAD_MIB)}; tail server: its default")
    load0 = os.getloadavg()[0]
    out, default = measure(args.reps, args.batch_mib << 20)
    print(report(out, default, args.reps, (load0, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
