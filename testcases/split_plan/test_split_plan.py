"""split_plan: profile both devices once, predict the best cut, then measure it, its
neighbours and the baselines, and fail when the partitioner chose wrong.

Profiles come from the device kit's one-pass profiler (profile_device.py), the link from
the newest link_baseline run of this lab (or --split-plan-link-mbps); measurements from
the kit's split_head/split_tail (head_client.py, tail_server.py). Every prediction and
measurement is a row of results.parquet; report_sections.py draws them.
"""
from __future__ import annotations

import json
import statistics

import pytest

from pytest_collab import split
from pytest_collab.devicekit.tail_service import READY_PATTERN
from pytest_collab.split import experiment, plan, profile


def _profile(collab, kind: str, files: profile.ProfileInputs, o) -> plan.DeviceProfile:
    """Run the one-pass profiler on the first device of ``kind``; record and return its profile."""
    remote = {name: collab.put(kind, getattr(files, name)) for name in ("full", "cuts", "inputs")}
    proc = collab.start(kind, "profile_device.py", "--model-artifact", remote["full"], "--cuts", remote["cuts"],
                        "--inputs", remote["inputs"], "--samples", str(o["samples"]),
                        "--encodings", ",".join(o["encodings"]), "--device", kind, "--threads", str(o["threads"]))
    proc.wait(timeout=1800)
    rows = proc.results()
    assert len(rows) == 1, f"profile_device.py on {kind} printed {len(rows)} COLLAB_RESULT lines, expected 1"
    row = rows[0]
    prof = plan.DeviceProfile.from_row(row)
    collab.record(kind="profile", role=kind, model=o["model"], points=row["points"], segments_ms=row["segments_ms"],
                  segments_raw_ms=row["segments_raw_ms"], forward_ms=row["forward_ms"],
                  interpreter_ms=row["interpreter_ms"], samples=row["samples"],
                  boundaries_json=json.dumps(row["boundaries"]))
    return prof


def _link(collab_options, o) -> plan.Link:
    if o["link_mbps"]:
        return plan.Link(o["link_mbps"], o["rtt_ms"], "--split-plan-link-mbps")
    link, why = profile.link_from_reports(collab_options.out_dir, collab_options.lan.name)
    if link is None:
        pytest.fail(f"split_plan cannot predict without the link: {why}", pytrace=False)
    return link


def _measure(collab, model, pred: plan.Prediction, images, o, analyses: dict) -> dict:
    """Run one cut (or baseline) with the kit's head and tail programs; its summary row."""
    prep = experiment.prepare(model, pred.point, pred.encoding if pred.encoding != "none" else "raw", images,
                              o["artifacts"], analyses=analyses)
    head_dev, tail_dev = experiment.choose_devices(collab.devices)
    remote = experiment.ship(collab.put, prep, head_dev, tail_dev)
    argv = ["--model", o["model"], "--split", pred.point, "--inputs", remote["inputs"], "--batch", "1",
            "--threads", str(o["threads"]), "--link-mbps", "1"]  # link rate only feeds the kit's lower bound
    if pred.encoding in ("fp32", "fp16", "int8"):
        argv += ["--encoding", pred.encoding]
    if "head" in remote:
        argv += ["--artifact", remote["head"]]
    server = None
    if "tail" in remote:
        server = collab.start(tail_dev, "tail_server.py", "--artifact", remote["tail"], "--bind", tail_dev.address,
                              "--port", "0", "--threads", str(o["threads"]), ready=READY_PATTERN)
        argv += ["--server", f"{server.address}:{server.match[1]}"]
    client = collab.start(head_dev, "head_client.py", *argv, after=server)
    client.wait(timeout=900)
    rows = client.results()
    assert len(rows) == 1, f"head_client printed {len(rows)} COLLAB_RESULT lines for {pred.point}"
    return rows[0]


@pytest.mark.devices(rpi=1, server=1)
def test_split_plan(collab, collab_options, plan_options):
    o = plan_options
    link = _link(collab_options, o)      # before any device work: without a link there is no plan
    model = split.load_model(o["model"])
    images = split.synthetic(o["samples"], o["shape"], seed=0)
    digest = experiment.model_digest(model, o["shape"])
    files = profile.prepare(split.with_preprocess(model), images, o["artifacts"] / f"profile-{digest}-d{o['depth']}",
                            depth=o["depth"], model_name=o["model"])
    edge, server = _profile(collab, "rpi", files, o), _profile(collab, "server", files, o)

    preds = plan.predict(edge, server, link, o["encodings"])
    top = plan.best(preds)
    for rate in sorted({*o["sweep"], link.mbps}):
        rated = preds if rate == link.mbps else plan.predict(edge, server, plan.Link(rate, link.rtt_ms), o["encodings"])
        chosen = plan.best(rated)
        for p in plan.best_per_point(rated).values():
            collab.record(kind="predicted", model=o["model"], link_mbps=rate, link_rtt_ms=link.rtt_ms,
                          link_source=link.source if rate == link.mbps else "sweep",
                          measured_link=rate == link.mbps, is_best=p.point == chosen.point, **p.as_row())

    measured: dict[str, float] = {}
    stage: dict[str, dict] = {}
    analyses: dict = {}
    for pred in plan.to_measure(preds):
        row = _measure(collab, model, pred, images, o, analyses)
        measured[pred.point] = row["p50_ms"]
        stage[pred.point] = row
        collab.record(kind="measured", model=o["model"], point=pred.point, position=pred.position,
                      encoding=pred.encoding, link_mbps=link.mbps, rtt_ms=link.rtt_ms, link_source=link.source,
                      predicted_ms=pred.total_ms, measured_ms=row["p50_ms"], is_best=pred.point == top.point,
                      error=(pred.total_ms - row["p50_ms"]) / row["p50_ms"],
                      latency_ms=row["latency_ms"], queries=row["queries"],
                      **{k: row[k] for k in ("head_ms_p50", "encode_ms_p50", "transfer_ms_p50", "decode_ms_p50",
                                             "tail_ms_p50", "wire_bytes")})
    verdict = plan.check(measured, top.point, o["margin"])
    # How far each device's compute moved between its profile and the measurement (the
    # baselines run the whole model on one side): 1.0 = no drift; contention shows here.
    drift = {"edge_drift": stage["on_device"]["head_ms_p50"] / edge.total_ms,
             "server_drift": stage["full_offload"]["tail_ms_p50"] / server.total_ms}
    errors = plan.relative_errors((p.total_ms, measured[p.point]) for p in plan.to_measure(preds))
    collab.record(kind="verdict", model=o["model"], link_mbps=link.mbps, predicted_best=verdict.predicted_best,
                  measured_best=verdict.measured_best, regret=verdict.regret, margin=o["margin"], ok=verdict.ok,
                  median_error=statistics.median(errors), **drift)
    assert verdict.ok, "the partitioner chose wrong: " + verdict.explain()
