"""split_plan: profile both devices once, predict the best cut, then measure it, its
neighbours and the baselines, and fail when the partitioner chose wrong.

Profiles come from the device kit's one-pass profiler (profile_device.py), with each board's
mean power over its pass where the device reports power; the link from the newest
link_baseline run of this lab (or --split-plan-link-mbps). ``--split-plan-objective energy``
chooses by predicted J per inference and checks against measured J; measurements from
the kit's split_head/split_tail (head_client.py, tail_server.py). Every prediction and
measurement is a row of results.parquet; report_sections.py draws them.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace

import numpy as np
import pytest

from pytest_collab import split
from pytest_collab.devicekit import artifact
from pytest_collab.devicekit.tail_service import READY_PATTERN
from pytest_collab.split import experiment, plan, power, profile


def _require_power(collab, o) -> None:
    """With the energy objective every device must report power: ask each wrapper before any
    work (a tiny device check whose start line lists the board's sensors)."""
    if o["objective"] != "energy":
        return
    missing = []
    for kind in ("rpi", "server"):
        probe = collab.start(kind, "module:collab_devicekit.needs", "numpy", "blosc2", "torch", name="power_probe")
        metrics = probe.board_power()
        probe.wait(timeout=300)
        if not power.has_power(metrics):
            missing.append(f"{probe.device.name} ({kind})")
    if missing:
        pytest.fail(f"split_plan --split-plan-objective energy: {plan.no_power(missing)}", pytrace=False)


def _profile(collab, kind: str, files: profile.ProfileInputs, o) -> plan.DeviceProfile:
    """Run the one-pass profiler on the first device of ``kind``; record and return its profile."""
    remote = {name: collab.put(kind, getattr(files, name)) for name in ("full", "cuts", "inputs", "probe")}
    collab.put(kind, artifact.sidecar_path(files.probe))
    proc = collab.start(kind, "profile_device.py", "--model-artifact", remote["full"], "--cuts", remote["cuts"],
                        "--inputs", remote["inputs"], "--probe-artifact", remote["probe"],
                        "--samples", str(o["samples"]),
                        "--encodings", ",".join(o["encodings"]), "--device", kind, "--threads", str(o["threads"]))
    proc.wait(timeout=1800)
    rows = proc.results()
    assert len(rows) == 1, f"profile_device.py on {kind} printed {len(rows)} COLLAB_RESULT lines, expected 1"
    row = rows[0]
    watts, covered = power.mean_power(proc, row["t_start"], row["t_end"])
    if o["objective"] == "energy" and watts is None:
        pytest.fail(f"split_plan: {proc.device.name} ({kind}) reported no power during its "
                    f"{row['t_end'] - row['t_start']:.2f} s profile pass: raise --split-plan-samples (a longer pass) "
                    "or --collab-hz", pytrace=False)
    prof = plan.DeviceProfile.from_row({**row, "power_w": watts})
    collab.record(kind="profile", role=kind, model=o["model"], points=row["points"], segments_ms=row["segments_ms"],
                  segments_raw_ms=row["segments_raw_ms"], forward_ms=row["forward_ms"],
                  interpreter_ms=row["interpreter_ms"], call_ms=row["call_ms"],
                  forward_after_idle_ms=row["forward_after_idle_ms"], samples=row["samples"],
                  boundaries_json=json.dumps(row["boundaries"]), power_w=watts, power_covered_s=covered,
                  power_scope="board", t_start=row["t_start"], t_end=row["t_end"])
    return prof


def _link(collab_options, o) -> plan.Link:
    if o["link_mbps"]:
        return plan.Link(o["link_mbps"], o["rtt_ms"], "--split-plan-link-mbps", o["burst_kb"] * 1024)
    link, why = profile.link_from_reports(collab_options.out_dir, collab_options.lan.name)
    if link is None:
        pytest.fail(f"split_plan cannot predict without the link: {why}", pytrace=False)
    return link


def _wire_round_trip(collab, o, edge_prof: plan.DeviceProfile, server_prof: plan.DeviceProfile) -> float:
    """The split wire's own round trip on the pair (ms): a one-byte tensor from the edge's head
    program to a sink tail, over the transport the measurements will use, each side idle
    meanwhile for half its whole-model time as in a split query (a device that idles for
    milliseconds wakes up slower than one in a tight loop: 0.1 against 0.6 ms on the
    emulated lab). link_baseline's round trip is another protocol's."""
    tiny = o["artifacts"] / "wire-probe.npy"
    if not tiny.exists():
        o["artifacts"].mkdir(parents=True, exist_ok=True)
        np.save(tiny, np.zeros((32, 1), np.uint8))
    head_dev, tail_dev = experiment.choose_devices(collab.devices)
    hold_ms, think_ms = (max(1.0, p.total_ms / 2) for p in (server_prof, edge_prof))
    server = collab.start(tail_dev, "tail_server.py", "--sink", "--sink-hold-ms", f"{hold_ms:.3f}", "--bind",
                          tail_dev.address, "--port", "0", ready=READY_PATTERN, name="wire_probe_tail")
    client = collab.start(head_dev, "head_client.py", "--server", f"{server.address}:{server.match[1]}",
                          "--inputs", collab.put(head_dev, tiny), "--batch", "1", "--think-ms", f"{think_ms:.3f}",
                          "--model", "wire-probe", "--split", "none", name="wire_probe_head", after=server)
    client.wait(timeout=300)
    server.stop()
    [row] = client.results()
    return float(row["transfer_ms_p50"])


def _measure(collab, model, pred: plan.Prediction, images, o, analyses: dict) -> dict:
    """Run one cut (or baseline) with the kit's head and tail programs; its summary row, with
    J per inference where the devices report power."""
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
    row = {**rows[0], **power.measured_energy(client, server, rows[0])}
    if server is not None:   # an idle tail of one cut is no neighbour for the next cut's run
        server.stop()
    return row


def _compute_swapped(pred: plan.Prediction, row: dict) -> dict:
    """A diagnostic beside the prediction, never instead of it: the prediction with its compute
    terms (head, tail) swapped for this cut's own measured medians. Its error is what the link
    and codec terms miss; the rest of the raw error is the devices' compute drifting between
    profile and measurement (or the profile timing compute differently)."""
    swapped = pred.total_ms - pred.head_ms - pred.tail_ms + row["head_ms_p50"] + row["tail_ms_p50"]
    return {"swapped_ms": swapped, "swapped_error": (swapped - row["p50_ms"]) / row["p50_ms"]}


@pytest.mark.devices(rpi=1, server=1)
def test_split_plan(collab, collab_options, plan_options):
    o = plan_options
    link = _link(collab_options, o)      # before any device work: without a link there is no plan
    _require_power(collab, o)            # nor without power, for the energy objective
    model = split.load_model(o["model"])
    images = split.synthetic(o["samples"], o["shape"], seed=0)
    digest = experiment.model_digest(model, o["shape"])
    files = profile.prepare(split.with_preprocess(model), images, o["artifacts"] / f"profile-{digest}-d{o['depth']}",
                            depth=o["depth"], model_name=o["model"])
    edge, server = _profile(collab, "rpi", files, o), _profile(collab, "server", files, o)
    if not o["rtt_ms"]:                  # a round trip given by hand is kept; else the wire's own
        wire_rtt = _wire_round_trip(collab, o, edge, server)
        collab.record(kind="wire", rtt_ms=wire_rtt, link_baseline_rtt_ms=link.rtt_ms, link_source=link.source)
        link = replace(link, rtt_ms=wire_rtt, source=f"{link.source}; round trip of the split wire")

    objective = o["objective"]
    preds = plan.predict(edge, server, link, o["encodings"])
    top = plan.best(preds, objective)
    for rate in sorted({*o["sweep"], link.mbps}):
        rated = preds if rate == link.mbps else plan.predict(edge, server, replace(link, mbps=rate), o["encodings"])
        chosen = plan.best(rated, objective)
        for p in plan.best_per_point(rated, objective).values():
            collab.record(kind="predicted", model=o["model"], objective=objective, link_mbps=rate,
                          link_rtt_ms=link.rtt_ms, link_source=link.source if rate == link.mbps else "sweep",
                          link_burst_bytes=link.burst_bytes,
                          measured_link=rate == link.mbps, is_best=p.point == chosen.point, **p.as_row())

    measured: dict[str, float] = {}
    stage: dict[str, dict] = {}
    analyses: dict = {}
    chosen_cuts = plan.to_measure(preds, objective=objective)
    for pred in chosen_cuts:
        row = _measure(collab, model, pred, images, o, analyses)
        measured[pred.point] = row["p50_ms"] if objective == "latency" else row["measured_j"]
        stage[pred.point] = row
        collab.record(kind="measured", model=o["model"], objective=objective, point=pred.point,
                      position=pred.position, encoding=pred.encoding, link_mbps=link.mbps, rtt_ms=link.rtt_ms,
                      link_source=link.source, predicted_ms=pred.total_ms, measured_ms=row["p50_ms"],
                      is_best=pred.point == top.point, error=(pred.total_ms - row["p50_ms"]) / row["p50_ms"],
                      latency_ms=row["latency_ms"], queries=row["queries"], predicted_j=pred.energy_j,
                      t_start=row["t_start"], t_end=row["t_end"], **_compute_swapped(pred, row),
                      **{k: row[k] for k in ("head_ms_p50", "encode_ms_p50", "transfer_ms_p50", "decode_ms_p50",
                                             "tail_ms_p50", "wire_bytes", "measured_j", "measured_edge_j",
                                             "measured_server_j")})
    unweighed = [k for k, v in measured.items() if not math.isfinite(v)]
    if unweighed:
        pytest.fail(f"split_plan: no power samples inside the measurement of {', '.join(unweighed)} (too short "
                    "for the wrapper's rate): raise --split-plan-samples or --collab-hz", pytrace=False)
    verdict = plan.check(measured, top.point, o["margin"], "ms" if objective == "latency" else "J")
    # How far each device's compute moved between its profile and the measurement (the
    # baselines run the whole model on one side): 1.0 = no drift; contention shows here.
    drift = {"edge_drift": stage["on_device"]["head_ms_p50"] / edge.total_ms,
             "server_drift": stage["full_offload"]["tail_ms_p50"] / server.total_ms}
    errors = plan.relative_errors((p.total_ms, stage[p.point]["p50_ms"]) for p in chosen_cuts)
    rest = plan.relative_errors((_compute_swapped(p, stage[p.point])["swapped_ms"], stage[p.point]["p50_ms"])
                                for p in chosen_cuts)
    joules = [(p.energy_j, stage[p.point]["measured_j"]) for p in chosen_cuts if p.energy_j is not None]
    energy_errors = plan.relative_errors((p, m) for p, m in joules if math.isfinite(m))
    collab.record(kind="verdict", model=o["model"], objective=objective, link_mbps=link.mbps,
                  predicted_best=verdict.predicted_best,
                  measured_best=verdict.measured_best, regret=verdict.regret, margin=o["margin"], ok=verdict.ok,
                  median_error=statistics.median(errors), median_swapped_error=statistics.median(rest),
                  median_energy_error=statistics.median(energy_errors) if energy_errors else None, **drift)
    assert verdict.ok, "the partitioner chose wrong: " + verdict.explain()
