"""``collab split plan RUN_DIR``: the predicted best per link rate from a run's recorded profiles,
and the link found from link_baseline runs."""
from __future__ import annotations

import json

import pytest

from pytest_collab.cli import main
from pytest_collab.split import profile
from test_plan import _profiles

pd = pytest.importorskip("pandas")


def _profile_row(p, role):
    return {"kind": "profile", "role": role, "points": list(p.points), "segments_ms": list(p.segments_ms),
            "boundaries_json": json.dumps({k: {e: [b.encode_ms, b.decode_ms, b.wire_bytes] for e, b in v.items()}
                                           for k, v in p.boundaries.items()})}


def _run(tmp_path, rows):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(rows).to_parquet(run / "results.parquet")
    return run


def test_plan_prints_the_optimum_moving_with_the_link(tmp_path, capsys):
    edge, server = _profiles()
    run = _run(tmp_path, [_profile_row(edge, "rpi"), _profile_row(server, "server"),
                          {"kind": "predicted", "measured_link": True, "link_mbps": 8.0, "link_rtt_ms": 2.0,
                           "link_source": "link_baseline grpc"}])
    assert main(["split", "plan", str(run), "--link-mbps", "0.1,8,1000"]) == 0
    out = capsys.readouterr().out
    assert "round trip 2.000 ms (link_baseline grpc)" in out
    best = [line.split()[1] for line in out.splitlines()[2:]]
    assert best == ["on_device", "b", "full_offload"]


def test_plan_of_a_run_without_profiles_says_what_to_run(tmp_path):
    run = _run(tmp_path, [{"kind": "measured", "role": "rpi"}])
    with pytest.raises(SystemExit, match="no 'rpi' profile.*testcases/split_plan"):
        main(["split", "plan", str(run)])
    with pytest.raises(SystemExit, match="results.parquet is missing"):
        main(["split", "plan", str(tmp_path / "nowhere")])


def test_link_from_link_baseline_rows_separates_rate_and_round_trip(tmp_path):
    # 1 kB in 1 ms, 1 MB in 9 ms: the slope is 999 kB / 8 ms ~ 999 Mbit/s, the round trip 1 ms
    base = {"testcase": "link_baseline", "transport": "grpc"}
    rows = pd.DataFrame([
        {**base, "size_bytes": 1000, "rtt_p50_ms": 1.0, "throughput_mbps": 8.0},
        {**base, "size_bytes": 1_000_000, "rtt_p50_ms": 9.0, "throughput_mbps": 888.9},
        {**base, "transport": "tcp", "size_bytes": 1000, "rtt_p50_ms": 0.1, "throughput_mbps": 80.0},
    ])
    link = profile.link_from_rows(rows)
    assert link is not None and link.rtt_ms == 1.0 and link.mbps == pytest.approx(999.0)
    run = tmp_path / "20260101-000000-aaaaaa"
    run.mkdir()
    rows.to_parquet(run / "results.parquet")
    (run / "run.json").write_text(json.dumps({"profile": {"name": "lab-a"}}))
    found, why = profile.link_from_reports(tmp_path, "lab-a")
    assert found is not None and found.mbps == pytest.approx(999.0) and run.name in found.source
    missing, why = profile.link_from_reports(tmp_path, "lab-b")
    assert missing is None and "pytest testcases/link_baseline --lan=lab-b" in why


def test_link_burst_is_what_the_largest_message_saves_after_idle():
    # 1 MB back to back in 9 ms, after idle in 7 ms: 2 ms at 999 Mbit/s ~ 250 kB crossed free
    base = {"testcase": "link_baseline", "transport": "grpc"}
    small = {**base, "size_bytes": 1000, "rtt_p50_ms": 1.0, "throughput_mbps": 8.0}
    large = {**base, "size_bytes": 1_000_000, "rtt_p50_ms": 9.0, "throughput_mbps": 888.9}
    link = profile.link_from_rows(pd.DataFrame([small, {**large, "rtt_idle_p50_ms": 7.0}]))
    assert link is not None and link.burst_bytes == pytest.approx(2.0 * 999e3 / 8)
    for idle in (8.8, 12.0, None):    # within 5 % (noise), slower after idle (slow start), or not probed
        row = {**large, "rtt_idle_p50_ms": idle} if idle is not None else large
        assert profile.link_from_rows(pd.DataFrame([small, row])).burst_bytes == 0.0


def test_plan_by_energy_uses_the_profiles_power(tmp_path, capsys):
    edge, server = _profiles()
    rows = [{**_profile_row(edge, "rpi"), "power_w": 2.0}, {**_profile_row(server, "server"), "power_w": 100.0}]
    run = _run(tmp_path, rows)
    assert main(["split", "plan", str(run), "--link-mbps", "8", "--rtt-ms", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[1] == "b"        # fastest
    assert main(["split", "plan", str(run), "--link-mbps", "8", "--rtt-ms", "2", "--objective", "energy"]) == 0
    out = capsys.readouterr().out
    assert "objective energy (board power: rpi 2.00 W, server 100.00 W)" in out
    best = out.splitlines()[2].split()
    assert best[1] == "on_device" and float(best[3]) == pytest.approx(0.08)   # least energy: 2 W x 40 ms


def test_plan_by_energy_without_power_names_the_devices(tmp_path):
    edge, server = _profiles()
    run = _run(tmp_path, [{**_profile_row(edge, "rpi"), "power_w": 2.0}, _profile_row(server, "server")])
    with pytest.raises(SystemExit, match=r"server reports none: .*power_meter.*testcases/split_plan"):
        main(["split", "plan", str(run), "--objective", "energy"])


def test_link_measured_earlier_in_the_running_session_is_found(tmp_path):
    """`pytest testcases/link_baseline testcases/split_plan` in one session: the run has no
    results.parquet yet, only its journals; the plan reads them (CI failed on this)."""
    from pytest_collab.results.assemble import HEADER
    from pytest_collab.results.records import ResultsJournal

    old = tmp_path / "20260101-000000-aaaaaa"
    old.mkdir()
    base = {"testcase": "link_baseline", "transport": "grpc"}
    pd.DataFrame([{**base, "size_bytes": 1000, "rtt_p50_ms": 5.0, "throughput_mbps": 1.6}]).to_parquet(
        old / "results.parquet")
    (old / "run.json").write_text(json.dumps({"profile": {"name": "lab-a"}}))
    running = tmp_path / "20260102-000000-bbbbbb" / ".parts"
    running.mkdir(parents=True)
    (running / HEADER).write_text(json.dumps({"profile": {"name": "lab-a"}}))
    with ResultsJournal(running / "results-main.jsonl") as journal:
        journal.append({**base, "size_bytes": 1000, "rtt_p50_ms": 1.0, "throughput_mbps": 8.0})
        journal.append({**base, "size_bytes": 1_000_000, "rtt_p50_ms": 9.0, "throughput_mbps": 888.9})
    found, _ = profile.link_from_reports(tmp_path, "lab-a")
    assert found is not None and "20260102-000000-bbbbbb" in found.source and found.rtt_ms == 1.0
