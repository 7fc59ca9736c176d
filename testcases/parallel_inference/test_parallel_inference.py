"""parallel_inference: one stream of inputs sharded across N devices (data-parallel).

Every device runs the whole classifier (distributed as in model_distribution); the stream
of ``--pi-inputs`` inputs is split round-robin into N shards, one per device, all released
at once (a barrier) and sent back to back. Recorded per N: aggregate throughput (inputs /
wall time of the slowest shard), each device's throughput, utilisation (model busy time /
wall) and finish time, the straggler (the last to finish, and by how much after the
median), and the end-to-end latency tail. The report sets the aggregate against
N x the one-device throughput (report_sections.py).
"""
from __future__ import annotations

import statistics
import threading
import time

WARMUP = 3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_shard(client, seeds: list[int], barrier: threading.Barrier, out: dict) -> None:
    before = client.stats()["busy_s"]
    barrier.wait()
    out["start"] = time.perf_counter()
    out["latency_ms"] = [client.predict(seed)["rtt_ms"] for seed in seeds]
    out["end"] = time.perf_counter()
    out["busy_s"] = client.stats()["busy_s"] - before


def test_parallel_inference(collab, pi_registry, pi_build, pi_deploy, n_devices, request):
    opt = request.config.getoption
    model, inputs = opt("pi_model"), opt("pi_inputs")
    devices = [d for chosen in collab.devices.values() for d in chosen]
    assert len(devices) == n_devices
    served = [pi_deploy.deploy(collab, d, pi_registry, model, pi_build) for d in devices]
    clients = [s.client() for s in served]
    try:
        for client in clients:          # warm-up: the first calls pay lazy initialisation
            for seed in range(-WARMUP, 0):
                client.predict(seed)
        shards = [list(range(inputs))[i::n_devices] for i in range(n_devices)]
        outs: list[dict] = [{} for _ in devices]
        barrier = threading.Barrier(n_devices)
        threads = [threading.Thread(target=run_shard, args=(c, s, barrier, o))
                   for c, s, o in zip(clients, shards, outs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
    finally:
        for client in clients:
            client.close()
    assert all("end" in o for o in outs), "a shard did not finish"

    start = min(o["start"] for o in outs)
    wall = max(o["end"] for o in outs) - start
    finish = [o["end"] - start for o in outs]
    latencies = [ms for o in outs for ms in o["latency_ms"]]
    slowest = max(range(n_devices), key=lambda i: finish[i])
    collab.record(
        model=model, inputs=inputs, devices=[d.name for d in devices],
        aggregate_ips=inputs / wall, wall_s=wall,
        device_ips=[len(s) / (o["end"] - o["start"]) for s, o in zip(shards, outs)],
        utilisation=[o["busy_s"] / wall for o in outs], finish_s=finish,
        straggler=devices[slowest].name, straggler_lag_s=finish[slowest] - statistics.median(finish),
        latency_p50_ms=percentile(latencies, 50), latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99), latency_max_ms=max(latencies),
        bytes_pulled=sum(s.bytes_pulled for s in served))
    assert len(latencies) == inputs
    assert all(0 < o["busy_s"] <= wall * 1.05 for o in outs)
