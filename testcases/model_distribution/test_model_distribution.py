"""model_distribution: every selected device gets the classifier for its architecture from
the lab registry and serves predictions.

Per device: its architecture from facts, ``ensure`` (``miss``: the tag is deleted first, so
the model is exported, pushed and fetched; ``hit``: it is in the registry, only fetched),
the device fetching over plain HTTP with digest checks, the classifier started, then
predictions. Recorded per device: ensure time, bytes pulled, cold start (deploy -> first
prediction), per-prediction latency and throughput. Figures: report_sections.py.
"""
from __future__ import annotations

import statistics
import time

from pytest_collab.containers.artifacts import publish_if_missing
from pytest_collab.containers.registry import RegistryClient, artifact_name

import deploy_model


def test_model_distribution(collab, md_registry, md_build, cache, request):
    opt = request.config.getoption
    model, count = opt("md_model"), opt("md_predictions")
    registry = RegistryClient(md_registry)
    tops = {}
    for device in [d for devices in collab.devices.values() for d in devices]:
        arch = deploy_model.detect_arch(device, collab.lan.path)
        ref = artifact_name(deploy_model.TASK, model, arch)
        if cache == "miss" and registry.exists(ref):
            registry.delete(ref)
        if cache == "hit":
            publish_if_missing(md_registry, deploy_model.TASK, model, arch, workdir=collab.run_dir,
                               build=lambda folder: md_build(model, folder), progress=lambda line: None)
        served = deploy_model.deploy(collab, device, md_registry, model, md_build, arch)
        client = served.client()
        try:
            first = client.predict(0)
            cold_start_s = time.perf_counter() - served.started
            t0 = time.perf_counter()
            answers = [client.predict(seed) for seed in range(1, count + 1)]
            elapsed = time.perf_counter() - t0
            busy = client.stats()
        finally:
            client.close()
        latencies = [a["rtt_ms"] for a in answers]
        tops[device.name] = [first["top1"]] + [a["top1"] for a in answers]
        collab.record(device=device.name, kind=device.kind, arch=arch, model=model, how=served.how,
                      digest=served.digest, bytes_pulled=served.bytes_pulled, ensure_s=served.ensure_s,
                      fetch_s=served.fetch_s, build_s=served.timings["build_s"],
                      push_s=served.timings["push_s"], load_s=served.load_s, cold_start_s=cold_start_s,
                      first_ms=first["rtt_ms"], latency_ms=latencies,
                      latency_p50_ms=statistics.median(latencies),
                      infer_p50_ms=statistics.median(a["infer_ms"] for a in answers),
                      throughput_ips=count / elapsed, predictions=busy["predictions"])

        assert served.how == ("built" if cache == "miss" else "pulled"), f"{device.name}: {served.how}"
        assert served.digest == registry.digest(ref), "the device fetched another manifest than the tag's"
        assert served.bytes_pulled > 0 and busy["predictions"] == count + 1
        assert cold_start_s >= served.ensure_s + served.load_s
    # One model, one set of seeds: every device must answer the same classes.
    assert len({tuple(t) for t in tops.values()}) == 1, tops
