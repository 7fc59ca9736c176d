"""The partitioner's arithmetic on hand-made profiles with a known optimum."""
from __future__ import annotations

import dataclasses

import pytest

from pytest_collab.split import plan
from pytest_collab.split.plan import Boundary, DeviceProfile, Link, PlanError

POINTS = ("a", "b", "c")


def _profiles(edge_seg=(10.0, 10.0, 10.0, 10.0), server_seg=(1.0, 1.0, 1.0, 1.0)):
    # wire bytes shrink along the model: input 100 kB, a 200 kB, b 20 kB, c 1 kB
    sizes = {"a": 200_000, "b": 20_000, "c": 1_000}
    eb = {p: {"fp32": Boundary(0.5, 0.0, s), "int8": Boundary(1.0, 0.0, s / 4)} for p, s in sizes.items()}
    sb = {p: {"fp32": Boundary(0.0, 0.25, s), "int8": Boundary(0.0, 0.5, s / 4)} for p, s in sizes.items()}
    eb["input"] = {"raw": Boundary(0.0, 0.0, 100_000)}
    sb["input"] = {"raw": Boundary(0.0, 0.0, 100_000)}
    return DeviceProfile("rpi", POINTS, edge_seg, eb), DeviceProfile("server", POINTS, server_seg, sb)


def test_terms_of_one_cut_add_up():
    edge, server = _profiles()
    preds = plan.predict(edge, server, Link(8.0, 2.0))          # 8 Mbit/s = 1000 bytes/ms
    b = next(p for p in preds if p.point == "b" and p.encoding == "fp32")
    terms = (b.head_ms, b.encode_ms, b.transfer_ms, b.rtt_ms, b.decode_ms, b.tail_ms)
    assert terms == (20.0, 0.5, 20.0, 2.0, 0.25, 2.0)
    assert b.total_ms == pytest.approx(44.75)
    full = preds[0]
    assert (full.point, full.head_ms, full.transfer_ms, full.tail_ms) == ("full_offload", 0.0, 100.0, 4.0)
    assert preds[-1].point == "on_device" and preds[-1].total_ms == 40.0 and preds[-1].rtt_ms == 0.0
    assert [p.position for p in preds] == sorted(p.position for p in preds)


def test_optimum_moves_with_link_rate():
    edge, server = _profiles()
    # slow link: nothing beats staying on the device (40 ms)
    assert plan.best(plan.predict(edge, server, Link(0.1, 2.0))).point == "on_device"
    # 8 Mbit/s: cut b with int8 (20 + 1 + 5 + 2 + 0.5 + 2 = 30.5) beats c (34.75) and on_device (40)
    top = plan.best(plan.predict(edge, server, Link(8.0, 2.0)))
    assert (top.point, top.encoding) == ("b", "int8") and top.total_ms == pytest.approx(30.5)
    # a fast link: full offload, 100 kB at 1000 Mbit/s = 0.8 ms + 2 rtt + 4 = 6.8 ms
    top = plan.best(plan.predict(edge, server, Link(1000.0, 2.0)))
    assert top.point == "full_offload" and top.total_ms == pytest.approx(6.8)
    moved = plan.sweep(edge, server, 2.0, [0.1, 8.0, 1000.0])
    assert [p.point for p in moved.values()] == ["on_device", "b", "full_offload"]


def test_call_cost_is_paid_once_per_program():
    # every head and tail program pays its device's call cost once per query: a split pays
    # both, each baseline one, so a mid cut loses the edge it had on compute alone
    edge, server = _profiles()
    edge, server = (dataclasses.replace(p, call_ms=c) for p, c in ((edge, 3.0), (server, 1.5)))
    preds = {(p.point, p.encoding): p for p in plan.predict(edge, server, Link(8.0, 2.0))}
    b = preds[("b", "fp32")]
    assert (b.head_ms, b.tail_ms) == (23.0, 3.5) and b.total_ms == pytest.approx(44.75 + 4.5)
    assert preds[("full_offload", "raw")].tail_ms == 5.5 and preds[("full_offload", "raw")].head_ms == 0.0
    assert preds[("on_device", "none")].total_ms == 43.0


def test_split_sides_compute_at_their_after_idle_pace():
    # each side of a split waits for the other between queries; on_device runs back to back
    edge, server = _profiles()
    edge, server = dataclasses.replace(edge, idle_factor=1.5), dataclasses.replace(server, idle_factor=2.0)
    preds = {(p.point, p.encoding): p for p in plan.predict(edge, server, Link(8.0, 2.0))}
    assert (preds[("b", "fp32")].head_ms, preds[("b", "fp32")].tail_ms) == (30.0, 4.0)
    assert preds[("full_offload", "raw")].tail_ms == 8.0 and preds[("on_device", "none")].total_ms == 40.0
    row = {"points": list(POINTS), "segments_ms": [1.0] * 4, "boundaries": {}, "forward_ms": 4.0,
           "forward_after_idle_ms": 5.0, "role": "rpi"}
    assert DeviceProfile.from_row(row).idle_factor == 1.25
    assert DeviceProfile.from_row({**row, "forward_after_idle_ms": None}).idle_factor == 1.0   # older rows


def test_burst_crosses_at_line_rate_while_the_bucket_refills():
    link = Link(8.0, 1.0, burst_bytes=50_000)                   # 1000 bytes/ms, a 50 kB bucket
    assert link.transfer_ms(20_000, rest_ms=100.0) == 0.0        # refilled meanwhile: all in the burst
    assert link.transfer_ms(20_000, rest_ms=5.0) == pytest.approx(15.0)   # only 5 kB refilled per query
    assert link.transfer_ms(80_000, rest_ms=100.0) == pytest.approx(30.0)  # beyond the depth: the rate
    assert Link(8.0, 1.0).transfer_ms(20_000, rest_ms=100.0) == 20.0       # no bucket: bytes / rate
    # in a prediction the rest of the query is every other term
    edge, server = _profiles()
    c = next(p for p in plan.predict(edge, server, Link(8.0, 2.0, burst_bytes=1e6)) if p.point == "c")
    assert c.transfer_ms == 0.0
    slow = next(p for p in plan.predict(edge, server, Link(0.008, 2.0, burst_bytes=1e6)) if p.point == "c")
    rest = slow.head_ms + slow.encode_ms + slow.rtt_ms + slow.decode_ms + slow.tail_ms
    assert slow.transfer_ms == pytest.approx(slow.wire_bytes - rest) and slow.transfer_ms > 0


def test_known_optimum_in_the_middle():
    # a slow edge and a tiny tensor at b: cutting at b wins over both baselines
    edge, server = _profiles(edge_seg=(1.0, 1.0, 50.0, 50.0), server_seg=(5.0, 5.0, 5.0, 5.0))
    preds = plan.predict(edge, server, Link(8.0, 1.0), encodings=["int8"])
    top = plan.best(preds)
    assert top.point == "b"  # 2 + 1 + 5 + 1 + 0.5 + 10 = 19.5; full offload 100+1+20 = 121
    assert top.total_ms == pytest.approx(19.5)
    measure = [p.point for p in plan.to_measure(preds)]
    assert measure == ["full_offload", "a", "b", "c", "on_device"]


def test_to_measure_at_the_edge_of_the_list_takes_baselines_once():
    edge, server = _profiles()
    preds = plan.predict(edge, server, Link(0.1, 2.0))
    assert [p.point for p in plan.to_measure(preds)] == ["full_offload", "c", "on_device"]


def test_check_fails_only_beyond_the_margin():
    ok = plan.check({"a": 10.0, "b": 9.5, "c": 12.0}, "a", margin=0.10)
    assert ok.ok and ok.measured_best == "b" and ok.regret == pytest.approx(0.05)
    bad = plan.check({"a": 10.0, "b": 8.0}, "a", margin=0.10)
    assert not bad.ok and "20.0% faster" in bad.explain()
    with pytest.raises(PlanError, match="was not measured"):
        plan.check({"a": 1.0}, "z", 0.1)


def test_mismatched_profiles_and_bad_link_are_clear_errors():
    edge, server = _profiles()
    other = DeviceProfile("server", ("a", "b"), (1.0, 1.0, 1.0), {})
    with pytest.raises(PlanError, match="different cuts"):
        plan.predict(edge, other, Link(8.0, 1.0))
    with pytest.raises(PlanError, match="link_baseline"):
        plan.predict(edge, server, Link(0.0, 1.0))
    with pytest.raises(PlanError, match="'fp16' not profiled on rpi"):
        plan.predict(edge, server, Link(8.0, 1.0), encodings=["fp16"])
    with pytest.raises(PlanError, match="segment times"):
        DeviceProfile("x", ("a",), (1.0,), {})


def test_profile_round_trips_through_a_result_row():
    edge, _ = _profiles()
    row = {"device": "rpi", "points": list(POINTS), "segments_ms": list(edge.segments_ms),
           "boundaries": {p: {e: [b.encode_ms, b.decode_ms, b.wire_bytes] for e, b in encs.items()}
                          for p, encs in edge.boundaries.items()}}
    assert DeviceProfile.from_row(row) == edge


def test_relative_errors():
    assert plan.relative_errors([(11.0, 10.0), (9.0, 10.0), (1.0, 0.0)]) == pytest.approx([0.1, 0.1])


def _powered(edge_w=2.0, server_w=100.0, **kw):
    from dataclasses import replace

    edge, server = _profiles(**kw)
    return replace(edge, power_w=edge_w), replace(server, power_w=server_w)


def test_energy_terms_of_one_cut():
    edge, server = _powered()
    preds = plan.predict(edge, server, Link(8.0, 2.0))
    b = next(p for p in preds if p.point == "b" and p.encoding == "fp32")
    # the edge board over the whole query (44.75 ms at 2 W) + the server over decode + tail (2.25 ms at 100 W)
    assert b.energy_j == pytest.approx(2.0 * 0.04475 + 100.0 * 0.00225)
    assert preds[-1].energy_j == pytest.approx(2.0 * 0.040)      # on_device: the edge alone
    assert b.as_row()["predicted_j"] == b.energy_j and b.as_row()["server_w"] == 100.0


def test_energy_optimum_differs_from_the_latency_optimum():
    # a frugal edge (2 W) and a hungry server (100 W): at 8 Mbit/s cut b is fastest (30.5 ms),
    # but every millisecond on the server costs 50 of the edge's, so staying on the device wins
    edge, server = _powered()
    preds = plan.predict(edge, server, Link(8.0, 2.0))
    fast, frugal = plan.best(preds), plan.best(preds, "energy")
    assert (fast.point, fast.encoding) == ("b", "int8")
    assert frugal.point == "on_device" and frugal.energy_j == pytest.approx(0.08)
    assert fast.energy_j == pytest.approx(2.0 * 0.0305 + 100.0 * 0.0025)
    assert fast.energy_j > frugal.energy_j
    # the same devices with the power the other way round: offloading early saves the edge's energy
    edge, server = _powered(edge_w=100.0, server_w=2.0)
    moved = plan.sweep(edge, server, 2.0, [8.0, 1000.0], objective="energy")
    assert [p.point for p in moved.values()] == ["b", "full_offload"]
    measure = plan.to_measure(plan.predict(edge, server, Link(8.0, 2.0)), objective="energy")
    assert [p.point for p in measure] == ["full_offload", "a", "b", "c", "on_device"]


def test_energy_objective_without_power_names_the_device_and_the_meter():
    edge, server = _profiles()
    preds = plan.predict(edge, server, Link(8.0, 2.0))
    with pytest.raises(PlanError, match=r"edge, server report none: .*power_meter.*docs/energy.md"):
        plan.best(preds, "energy")
    edge, server = _powered(server_w=None)
    preds = plan.predict(edge, server, Link(8.0, 2.0))
    assert preds[-1].energy_j is not None                # on_device needs no server power
    with pytest.raises(PlanError, match=r"server reports none"):
        plan.best(preds, "energy")
    with pytest.raises(PlanError, match="choose one of latency, energy"):
        plan.best(preds, "joules")


def test_profile_rows_carry_power():
    row = {"role": "rpi", "points": ["a"], "segments_ms": [1.0, 2.0], "boundaries": {}, "power_w": 4.5}
    assert DeviceProfile.from_row(row).power_w == 4.5
    assert DeviceProfile.from_row({**row, "power_w": float("nan")}).power_w is None
    assert DeviceProfile.from_row({k: v for k, v in row.items() if k != "power_w"}).power_w is None
