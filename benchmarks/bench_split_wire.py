"""Tensor path vs raw TCP sendall, interleaved on loopback, for 1, 4 and 16 MiB tensors.

What is compared (like for like, both with one reply per tensor):
  raw        socket.sendall(8-byte length + the wire bytes), the receiver reads them into one
             reused buffer (the best a socket does) and answers 1 byte;
  transfer   the same wire bytes through wire.TensorClient.send (1 MiB chunks on one
             grpc.aio stream, the kit's split_tail --sink on the other end) minus the server's
             reported work (decompress + decode + checksum), i.e. the transport alone.
``transport ratio`` = raw time / transfer time: issue 7's target is >= 0.85 from 1 MiB up.
Codec cost is reported apart (encode + compress on the client, decompress + decode on
the server) and folded into ``path ratio`` = raw time / (encode + compress + round trip
- checksum), the whole tensor path against shipping the same bytes raw. The server's
checksum (it proves every tensor arrived intact) is never counted. ``ceiling`` is a
one-way gRPC stream of 1 MiB chunks (no replies) against one raw sendall of the same
bytes: what gRPC can do on this machine at all; ``per tensor`` is the round trip of a
16-byte tensor, the fixed cost that decides the ratio at 1 MiB.

``pipelined`` keeps ``--window`` tensors awaiting their replies on both sides (raw: a
thread reads the acks; gRPC: wire.TensorClient.send_pipelined), still one reply per
tensor, so the round trip stops costing throughput. It times the whole path (encode +
compress inside the timed loop, against a sink that only assembles and decodes), once
with the tail server's heap pad (devicekit/heap.py) and once with glibc's default heap, side by
side: ``pipelined ratio`` and ``default heap``.

Raw and gRPC alternate within every repetition (order flipped each time) so both see the
same machine load; figures are medians of ``--reps`` after one warm-up round.

    .venv/bin/python benchmarks/bench_split_wire.py [--reps 15] [--codec none] [--window 2]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import split_helpers  # noqa: E402

from pytest_collab.devicekit import codec, heap, wire  # noqa: E402

SIZES = [1 << 20, 4 << 20, 16 << 20]
CEILING_BYTES = 64 << 20
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

    def send(self, data: bytes) -> float:
        """Seconds for length + data + 1-byte ack."""
        t0 = time.perf_counter()
        self._put(data)
        self._ack()
        return time.perf_counter() - t0

    def _put(self, data: bytes) -> None:
        self.sock.sendall(struct.pack("<Q", len(data)))
        self.sock.sendall(data)

    def _ack(self) -> None:
        if self.sock.recv(1) != b"k":
            raise RuntimeError("raw receiver closed the connection")

    def send_pipelined(self, data: bytes, count: int, window: int) -> float:
        """Seconds for ``count`` sends of ``data`` with up to ``window`` awaiting their ack."""
        slots = threading.Semaphore(window)

        def acks() -> None:
            for _ in range(count):
                self._ack()
                slots.release()

        reader = threading.Thread(target=acks)
        t0 = time.perf_counter()
        reader.start()
        for _ in range(count):
            slots.acquire()
            self._put(data)
        reader.join()
        return time.perf_counter() - t0

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(10)


@dataclass
class Samples:
    """Per size: seconds of each measured repetition, by what was timed."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, **seconds: float) -> None:
        for k, v in seconds.items():
            self.times.setdefault(k, []).append(v)

    def median(self, key: str) -> float:
        return statistics.median(self.times[key])


def tensor_once(client: wire.TensorClient, arr: np.ndarray, comp: codec.Compression) -> tuple[bytes, dict[str, float]]:
    """One tensor through the whole path; returns its wire bytes and the timed parts."""
    t0 = time.perf_counter()
    data, meta = codec.pack(arr, "fp32", comp)
    t1 = time.perf_counter()
    reply = client.send([(data, meta)], outputs=False)
    srv = reply.body["server"]
    server_work = srv["decompress_s"] + srv["decode_s"]
    return data, {"encode": t1 - t0, "decode": server_work, "transfer": reply.rpc_s - server_work - srv["tail_s"],
                  "path": t1 - t0 + reply.rpc_s - srv["tail_s"]}


def measure(reps: int, comp: codec.Compression,
            window: int) -> tuple[dict[int, Samples], dict[int, Samples], dict[str, float]]:
    """Interleaved repetitions of raw and tensor path per size, pipelined, the one-way ceiling."""
    raw = RawLink()
    proc, port = split_helpers.start_tail("--sink")
    arrays = {s: np.random.default_rng(s).standard_normal(s // 4).astype(np.float32) for s in SIZES}
    out = {s: Samples() for s in SIZES}
    try:
        with wire.TensorClient(f"127.0.0.1:{port}") as client:
            for rep in range(reps + 1):
                for size in SIZES:
                    if rep % 2:
                        raw_s = raw.send(codec.pack(arrays[size], "fp32", comp)[0])
                        _, parts = tensor_once(client, arrays[size], comp)
                    else:
                        data, parts = tensor_once(client, arrays[size], comp)
                        raw_s = raw.send(data)
                    if rep:  # the first round warms both connections up
                        out[size].add(raw=raw_s, **parts)
            ceiling = one_way(client, raw, reps)
            ceiling.update(fixed_cost(client, raw, reps))
    finally:
        split_helpers.stop(proc)
    try:
        piped = pipelined(raw, arrays, comp, max(3, reps // 2), window)
    finally:
        raw.close()
    return out, piped, ceiling


def one_way(client: wire.TensorClient, raw: RawLink, reps: int) -> dict[str, float]:
    """MB/s of a long one-way stream: gRPC 1 MiB chunks vs one raw sendall, medians."""
    blob = bytes(CEILING_BYTES)
    grpc_bps, raw_bps = [], []
    for _ in range(max(3, reps // 3)):
        grpc_bps.append(client.measure_link(CEILING_BYTES))
        raw_bps.append(CEILING_BYTES / raw.send(blob))
    return {"grpc": statistics.median(grpc_bps) / 1e6, "raw": statistics.median(raw_bps) / 1e6}


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of all threads of this process, or of process ``pid``, in nanoseconds'
    resolution (the scheduler's per-thread runtime; /proc/PID/stat counts 10 ms ticks)."""
    if pid is None:
        return time.process_time()
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            pass
    return total / 1e9


def timed(run, server_pid: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of both ends) of ``run()``."""
    c0, s0, t0 = cpu_seconds(), cpu_seconds(server_pid), time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    return wall, cpu_seconds() - c0 + cpu_seconds(server_pid) - s0


def pipelined(raw: RawLink, arrays: dict[int, np.ndarray], comp: codec.Compression, reps: int,
              window: int) -> dict[int, Samples]:
    """Whole-path throughput with ``window`` tensors in flight: raw vs gRPC, with the tail's
    heap pad and without it (glibc's default heap), interleaved like :func:`measure`."""
    servers = {"grpc": split_helpers.start_tail("--sink", "--no-checksum"),
               "default_heap": split_helpers.start_tail("--sink", "--no-checksum", "--heap-pad", "0")}
    clients = {k: wire.TensorClient(f"127.0.0.1:{port}") for k, (_, port) in servers.items()}
    out = {s: Samples() for s in arrays}
    try:
        for rep in range(reps + 1):
            for size, arr in arrays.items():
                count = max(8, (96 << 20) // size)

                def tensors() -> Iterator[list[wire.Part]]:
                    return ([codec.pack(arr, "fp32", comp)] for _ in range(count))

                data = codec.pack(arr, "fp32", comp)[0]
                times = {"raw": timed(lambda: raw.send_pipelined(data, count, window), raw.proc.pid)}
                for name in (list(clients) if rep % 2 else list(clients)[::-1]):
                    times[name] = timed(lambda: clients[name].send_pipelined(tensors(), window, outputs=False),
                                        servers[name][0].pid)
                if rep:
                    out[size].add(**{k: v[0] / count for k, v in times.items()},
                                  **{f"{k}_cpu": v[1] / count for k, v in times.items()})
    finally:
        for c in clients.values():
            c.close()
        for proc, _ in servers.values():
            split_helpers.stop(proc)
    return out


def fixed_cost(client: wire.TensorClient, raw: RawLink, reps: int) -> dict[str, float]:
    """Round trip (ms) of a 16-byte tensor: the per-tensor cost that no tensor size hides."""
    data, meta = codec.pack(np.zeros(4, np.float32), "fp32", codec.Compression("none"))
    grpc_s, raw_s = [], []
    for _ in range(reps):
        reply = client.send([(data, meta)], outputs=False)
        srv = reply.body["server"]
        grpc_s.append(reply.rpc_s - srv["decompress_s"] - srv["decode_s"] - srv["tail_s"])
        raw_s.append(raw.send(data))
    return {"grpc_rtt_ms": statistics.median(grpc_s) * 1e3, "raw_rtt_ms": statistics.median(raw_s) * 1e3}


def report(samples: dict[int, Samples], piped: dict[int, Samples], ceiling: dict[str, float], reps: int,
           codec_name: str, window: int, load: tuple[float, float]) -> str:
    lines = [f"medians of {reps}, interleaved; codec={codec_name}; load average {load[0]:.2f} before, "
             f"{load[1]:.2f} after ({os.cpu_count()} cores)",
             f"{'size':>8} {'raw MB/s':>9} {'transfer MB/s':>14} {'transport ratio':>16} "
             f"{'encode ms':>10} {'decode ms':>10} {'path ratio':>11}"]
    for size, s in samples.items():
        raw = s.median("raw")
        lines.append(f"{size >> 20:>5} MiB {size / raw / 1e6:>9.0f} {size / s.median('transfer') / 1e6:>14.0f} "
                     f"{raw / s.median('transfer'):>16.2f} {s.median('encode') * 1e3:>10.2f} "
                     f"{s.median('decode') * 1e3:>10.2f} {raw / s.median('path'):>11.2f}")
    piped_reps = len(next(iter(piped.values())).times["raw"])
    lines.append(f"pipelined, {window} tensors in flight, whole path (medians of {piped_reps}):")
    lines.append(f"{'size':>8} {'raw MB/s':>9} {'path MB/s':>10} {'pipelined ratio':>16} {'default heap':>13} "
                 f"{'raw CPU-s/GB':>13} {'path CPU-s/GB':>14} {'CPU bound':>10}")
    cores = os.cpu_count() or 1
    for size, s in piped.items():
        raw = s.median("raw")
        # CPU as a mean (total over repetitions / bytes): a median of short runs is biased
        raw_cpu, grpc_cpu = (statistics.fmean(s.times[k]) / size * 1e9 for k in ("raw_cpu", "grpc_cpu"))
        # the best ratio this path could reach here: all cores busy with it, against raw as measured
        bound = min(1.0, cores / grpc_cpu * 1e9 / (size / raw))
        lines.append(f"{size >> 20:>5} MiB {size / raw / 1e6:>9.0f} {size / s.median('grpc') / 1e6:>10.0f} "
                     f"{raw / s.median('grpc'):>16.2f} {raw / s.median('default_heap'):>13.2f} "
                     f"{raw_cpu:>13.2f} {grpc_cpu:>14.2f} {bound:>10.2f}")
    lines.append(f"ceiling: one-way gRPC stream of {CEILING_BYTES >> 20} MiB {ceiling['grpc']:.0f} MB/s, raw "
                 f"{ceiling['raw']:.0f} MB/s, ratio {ceiling['grpc'] / ceiling['raw']:.2f}")
    lines.append(f"per tensor: round trip of a 16-byte tensor {ceiling['grpc_rtt_ms']:.3f} ms gRPC, "
                 f"{ceiling['raw_rtt_ms']:.3f} ms raw")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15, help="measured repetitions per size (default 15)")
    ap.add_argument("--window", type=int, default=2, help="tensors in flight when pipelined (default 2)")
    ap.add_argument("--codec", default="none", help="blosc2 codec for the tensor path (default none: "
                    "random data does not compress, so this isolates the transport)")
    args = ap.parse_args()
    # This process is the sending device (split_head does the same); the raw sender
    # shares it, so both senders run on the same heap.
    print(f"client {heap.keep_freed_heap(heap.DEFAULT_PAD_MIB)}; tail server: its default "
          f"({heap.DEFAULT_PAD_MIB} MiB), and glibc's default in the 'default heap' column")
    load0 = os.getloadavg()[0]
    samples, piped, ceiling = measure(args.reps, codec.Compression(args.codec), args.window)
    print(report(samples, piped, ceiling, args.reps, args.codec, args.window, (load0, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
