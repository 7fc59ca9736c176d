"""The dashboard's JSON API through Starlette's TestClient (no server, no browser)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dashboard_helpers import TOKEN, free_port

from pytest_collab.dashboard.app import Settings, create_app
from pytest_collab.dashboard.auth import check_bind
from pytest_collab.errors import CollabError

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.filterwarnings("ignore:.*httpx2")]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RUN_ID = "20260101-120000-abcdef"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "network_profiles").mkdir()
    (tmp_path / "reports").mkdir()
    return tmp_path


def client(root: Path, **settings):
    from starlette.testclient import TestClient

    app = create_app(Settings(root=root, reports=root / "reports", token=TOKEN, **settings))
    return TestClient(app, base_url="http://127.0.0.1")


def fake_run(reports: Path, run_id: str = RUN_ID, **extra) -> Path:
    run = reports / run_id
    (run / "logs").mkdir(parents=True)
    info = {"run_id": run_id, "started": "2026-01-01T12:00:00+00:00", "finished": "2026-01-01T12:01:30+00:00",
            "profile": {"name": "lab1"}, "git": {"commit": "0123456789abcdef", "branch": "main", "dirty": False},
            "tests": {"a::t1": {"outcome": "passed"}, "a::t2": {"outcome": "failed"}}, **extra}
    (run / "run.json").write_text(json.dumps(info))
    return run


# ------------------------------------------------------------------ security
def test_actions_need_the_token(root: Path) -> None:
    fake_run(root / "reports")
    c = client(root)
    for method, path in [("POST", "/api/lan/local/check"), ("POST", "/api/lan/local/facts"),
                         ("POST", "/api/registry/ensure"), ("DELETE", f"/api/runs/{RUN_ID}"),
                         ("POST", f"/api/runs/{RUN_ID}/tag"), ("POST", f"/api/runs/{RUN_ID}/report")]:
        assert c.request(method, path).status_code == 401, path
        assert c.request(method, path, headers={"Authorization": "Bearer nope"}).status_code == 403, path
    assert (root / "reports" / RUN_ID).is_dir()
    assert c.get("/api/runs").status_code == 200  # reading is open on loopback


def test_a_form_field_carries_the_token_too(root: Path) -> None:
    fake_run(root / "reports")
    c = client(root)
    done = c.post(f"/api/runs/{RUN_ID}/tag", data={"token": TOKEN, "tag": "baseline"})
    assert done.status_code == 200 and done.json()["tags"] == ["baseline"]


def test_a_foreign_host_header_is_refused(root: Path) -> None:
    """DNS rebinding: a page of another site resolving to 127.0.0.1 gets nothing."""
    assert client(root).get("/api/runs", headers={"Host": "evil.example"}).status_code == 400


def test_remote_mode_needs_the_token_to_read(root: Path) -> None:
    c = client(root, remote=True, allowed_hosts=["*"])
    assert c.get("/api/runs").status_code == 401
    assert c.get("/api/runs", headers=AUTH).status_code == 200
    opened = c.get(f"/runs?token={TOKEN}")
    assert opened.status_code == 200 and "collab_dashboard" in opened.headers["set-cookie"]
    assert c.get("/api/runs").status_code == 200  # the same-site cookie now
    assert c.delete(f"/api/runs/{RUN_ID}").status_code == 401  # but never for an action


def test_binding_beyond_loopback_needs_allow_remote() -> None:
    check_bind("127.0.0.1", False, TOKEN)
    check_bind("::1", False, TOKEN)
    with pytest.raises(CollabError, match="--allow-remote"):
        check_bind("0.0.0.0", False, TOKEN)
    with pytest.raises(CollabError, match="token"):
        check_bind("0.0.0.0", True, "")
    check_bind("0.0.0.0", True, TOKEN)


def test_cli_refuses_a_network_address_without_allow_remote(root: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_collab", "dashboard", "--host", "0.0.0.0",
                           "--port", str(free_port())], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--allow-remote" in done.stderr


def test_no_secret_of_a_profile_is_shown(root: Path) -> None:
    (root / "network_profiles" / "lab1.yaml").write_text(
        "devices:\n"
        "  - {name: pi, kind: rpi, address: 10.9.9.9, transport: ssh,\n"
        "     ssh: {user: pi, key: ~/.ssh/very_private_key, key_env: LAB_KEY_PATH},\n"
        "     facts: {collab_arch: arm64, api_token: s3cr3t-value, nested: {db_password: hunter2}}}\n")
    c = client(root)
    text = c.get("/api/lan/lab1").text
    assert "pi" in text and "arm64" in text
    for secret in ("very_private_key", "LAB_KEY_PATH", "s3cr3t-value", "hunter2"):
        assert secret not in text
    assert c.get("/lab/lab1").status_code == 200


# ------------------------------------------------------------------ lab
def test_lab_lists_the_local_devices_and_checks_them(root: Path) -> None:
    c = client(root)
    assert "local" in c.get("/api/lan").json()["profiles"]
    view = c.get("/api/lan/local").json()
    assert [d["name"] for d in view["devices"]][:2] == ["server-1", "jetson-1"]
    assert all("busy" in d["lease"] for d in view["devices"])
    checked = c.post("/api/lan/local/check", headers=AUTH, json={"devices": ["rpi-1", "rpi-2"]}).json()
    assert set(checked["health"]) == {"rpi-1", "rpi-2"}
    assert all(h["ok"] and h["latency_ms"] >= 0 and h["python"] for h in checked["health"].values())
    after = {d["name"]: d["health"] for d in c.get("/api/lan/local").json()["devices"]}
    assert after["rpi-1"]["ok"] and after["rpi-3"] is None


def test_an_unknown_device_is_named(root: Path) -> None:
    c = client(root)
    bad = c.post("/api/lan/local/check", headers=AUTH, json={"devices": ["rpi-99"]})
    assert bad.status_code == 400 and "rpi-99" in bad.json()["error"] and "rpi-1" in bad.json()["error"]


def test_leases_show_who_holds_a_device(root: Path) -> None:
    from pytest_collab.dashboard.lab import load
    from pytest_collab.leases.files import acquire, owner_info
    from pytest_collab.select import Constraint

    (root / "network_profiles" / "lab2.yaml").write_text(
        "devices:\n  - {name: d1, kind: rpi}\n  - {name: d2, kind: rpi}\n")
    lan = load(root, "lab2")
    with acquire(lan, Constraint({"rpi": 1}), owner_info("run-x", "t.py::test_a"), timeout=5):
        rows = {d["name"]: d["lease"] for d in client(root).get("/api/lan/lab2").json()["devices"]}
    held = [r for r in rows.values() if r["busy"]]
    assert len(held) == 1 and held[0]["test"] == "t.py::test_a" and held[0]["pid"] == os.getpid()
    assert held[0]["since"]


def test_a_broken_profile_is_an_error_naming_file_and_key(root: Path) -> None:
    (root / "network_profiles" / "bad.yaml").write_text("devices:\n  - {name: x, kind: rpi, transport: pigeon}\n")
    c = client(root)
    api = c.get("/api/lan/bad")
    assert api.status_code == 400 and "bad.yaml" in api.json()["error"] and "transport" in api.json()["error"]
    page = c.get("/lab/bad")
    assert page.status_code == 400 and "bad.yaml" in page.text and "Traceback" not in page.text


# ------------------------------------------------------------------ runs
def test_runs_are_listed_with_status_duration_profile_commit_counts(root: Path) -> None:
    reports = root / "reports"
    fake_run(reports)
    (reports / "stray").mkdir()
    (reports / "latest").symlink_to(RUN_ID)
    rows = {r["id"]: r for r in client(root).get("/api/runs").json()["runs"]}
    assert set(rows) == {RUN_ID, "stray"}
    run = rows[RUN_ID]
    assert (run["status"], run["duration_s"], run["profile"], run["commit"]) == ("failed", 90.0, "lab1",
                                                                               "0123456789abcdef")
    assert run["counts"] == {"passed": 1, "failed": 1}
    assert rows["stray"]["status"] == "not a run" and "stray/run.json" in rows["stray"]["problem"]


def test_tag_and_delete_a_run(root: Path) -> None:
    reports = root / "reports"
    run = fake_run(reports)
    c = client(root)
    assert c.post(f"/api/runs/{RUN_ID}/tag", headers=AUTH, json={"tag": "good"}).json()["tags"] == ["good"]
    assert json.loads((run / "run.json").read_text())["tags"] == ["good"]
    bad = c.post(f"/api/runs/{RUN_ID}/tag", headers=AUTH, json={"tag": "no spaces"})
    assert bad.status_code == 400 and "tag" in bad.json()["error"]
    assert c.get(f"/api/runs/{RUN_ID}").json()["tags"] == ["good"]
    assert c.delete(f"/api/runs/{RUN_ID}", headers=AUTH).status_code == 200
    assert not run.exists()
    assert c.delete(f"/api/runs/{RUN_ID}", headers=AUTH).status_code == 404


@pytest.mark.parametrize("name", ["..", "latest", ".hidden", "a%2Fb"])
def test_only_run_folders_under_reports_can_be_touched(root: Path, name: str) -> None:
    fake_run(root / "reports")
    (root / "reports" / "latest").symlink_to(RUN_ID)
    c = client(root)
    answer = c.delete(f"/api/runs/{name}", headers=AUTH)
    assert answer.status_code in (400, 404)
    assert (root / "reports" / RUN_ID / "run.json").is_file() and (root / "network_profiles").is_dir()


def test_a_running_run_can_not_be_deleted(root: Path) -> None:
    run = root / "reports" / RUN_ID
    live_state(run, pid=os.getpid())
    c = client(root)
    assert c.get("/api/runs").json()["runs"][0]["status"] == "running"
    refused = c.delete(f"/api/runs/{RUN_ID}", headers=AUTH)
    assert refused.status_code == 400 and "still running" in refused.json()["error"]


# ------------------------------------------------------------------ live
def live_state(run: Path, pid: int, programs: list[dict] | None = None, worker: str = "main") -> Path:
    (run / "live").mkdir(parents=True, exist_ok=True)
    state = {"v": 1, "run_id": run.name, "worker": worker, "pid": pid, "host": os.uname().nodename,
             "user": "me", "profile": "lab1", "started": time.time() - 5, "updated": time.time(),
             "state": "running", "counts": {"passed": 1},
             "tests": {"t.py::test_a": {"state": "running", "since": time.time() - 3, "devices": {"rpi": ["d1"]}},
                       "t.py::test_b": {"state": "lease", "since": time.time() - 1}},
             "programs": programs or []}
    path = run / "live" / f"{worker}.json"
    path.write_text(json.dumps(state))
    return path


def write_samples(path: Path, start: float, values: list[dict], exit_code: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"k": "program", "run": "r", "test": "t", "device": "d", "program": "x"},
             {"k": "start", "t": start, "pid": 1, "units": {}}]
    lines += [{"k": "m", "t": start + 0.5 * i, "pid": 1, "v": v} for i, v in enumerate(values)]
    if exit_code is not None:
        lines.append({"k": "exit", "t": start + 0.5 * len(values), "code": exit_code, "signal": None})
    with open(path, "a") as fh:
        fh.write("".join(json.dumps(line) + "\n" for line in lines))


def test_live_sums_a_devices_programs_and_takes_rates(root: Path) -> None:
    run = root / "reports" / RUN_ID
    now = time.time()
    programs = [{"name": n, "device": "d1", "test": "t.py::test_a", "started": now - 3,
                 "log": f"logs/t/d1.{n}.log", "jsonl": f"logs/t/d1.{n}.jsonl"} for n in ("server", "client")]
    live_state(run, pid=os.getpid(), programs=programs)
    for i, name in enumerate(("server", "client")):
        write_samples(run / "logs" / "t" / f"d1.{name}.jsonl", now - 2.0, [
            {"cpu_percent": 10.0 * (i + 1), "rss_bytes": 1000 * (i + 1), "net_rx_bytes": 0, "net_tx_bytes": 0,
             "power_w.VDD_IN": 4.0},
            {"cpu_percent": 20.0 * (i + 1), "rss_bytes": 2000 * (i + 1), "net_rx_bytes": 500, "net_tx_bytes": 500,
             "power_w.VDD_IN": 5.0, "power_w.VDD_CPU": 1.0}])
        (run / "logs" / "t" / f"d1.{name}.log").write_text("".join(f"12:00:0{k} stdout: line {k}\n" for k in range(5)))
    c = client(root)
    snap = c.get("/api/live").json()
    (session,) = snap["sessions"]
    assert session["alive"] and session["id"] == f"{RUN_ID}/main"
    labels = {t["nodeid"]: t["label"] for t in session["tests"]}
    assert labels == {"t.py::test_a": "running", "t.py::test_b": "waiting for a lease"}
    series = session["devices"]["d1"]
    assert series["cpu"][-1] == 60.0 and series["mem"][-1] == 6000  # summed over both programs
    assert series["net"][-1] == 4000  # (1000 B in 0.5 s) per program, summed
    assert series["power"][-1] == 5.0  # the board's largest rail, not a sum
    assert [p["status"] for p in session["programs"]] == ["running", "running"]
    log = c.get("/api/live/log", params={"run": RUN_ID, "path": "logs/t/d1.client.log", "lines": 2}).json()
    assert log["lines"] == ["12:00:03 stdout: line 3", "12:00:04 stdout: line 4"]
    escape = c.get("/api/live/log", params={"run": RUN_ID, "path": "../../network_profiles/x.log"})
    assert escape.status_code == 400


def test_live_follows_new_lines_and_sees_exits(root: Path) -> None:
    run = root / "reports" / RUN_ID
    now = time.time()
    live_state(run, pid=os.getpid(), programs=[{"name": "p", "device": "d1", "test": "t", "started": now,
                                                 "log": "logs/t/d1.p.log", "jsonl": "logs/t/d1.p.jsonl"}])
    jsonl = run / "logs" / "t" / "d1.p.jsonl"
    write_samples(jsonl, now - 1.0, [{"cpu_percent": 5.0, "rss_bytes": 100}])
    from pytest_collab.dashboard.live import LiveMonitor

    monitor = LiveMonitor(root / "reports", min_interval=0)
    first = monitor.snapshot()["sessions"][0]["devices"]["d1"]["mem"][-1]
    with open(jsonl, "a") as fh:
        fh.write(json.dumps({"k": "m", "t": now, "pid": 1, "v": {"cpu_percent": 50.0, "rss_bytes": 900}}) + "\n")
        fh.write(json.dumps({"k": "exit", "t": now, "code": 3, "signal": None}) + "\n")
    snap = monitor.snapshot()["sessions"][0]
    assert (first, snap["devices"]["d1"]["mem"][-1]) == (100, 900)
    assert snap["programs"][0]["status"] == "exited 3"


def test_sessions_show_separately_and_dead_ones_as_gone(root: Path) -> None:
    run = root / "reports" / RUN_ID
    live_state(run, pid=os.getpid(), worker="gw0")
    live_state(run, pid=os.getpid(), worker="gw1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    live_state(root / "reports" / "20260101-130000-000000", pid=int(dead.stdout), worker="main")
    sessions = {s["id"]: s for s in client(root).get("/api/live").json()["sessions"]}
    assert set(sessions) == {f"{RUN_ID}/gw0", f"{RUN_ID}/gw1", "20260101-130000-000000/main"}
    assert sessions[f"{RUN_ID}/gw0"]["alive"] and sessions[f"{RUN_ID}/gw1"]["alive"]
    gone = sessions["20260101-130000-000000/main"]
    assert not gone["alive"] and {t["label"] for t in gone["tests"]} == {"interrupted"}


# ------------------------------------------------------------------ registry
def test_an_unreachable_registry_is_shown_with_its_address(root: Path) -> None:
    port = free_port()
    data = client(root, registry=f"127.0.0.1:{port}").get("/api/registry").json()
    assert data["reachable"] is False and f"127.0.0.1:{port}" in data["error"] and data["rows"] == []


def test_registry_rows_and_lookup(root: Path, registry) -> None:
    from dashboard_helpers import push_image, push_model_artifact

    digest, size = push_image(registry.url, "fl/cnn", "arm64", arch="arm64")
    push_image(registry.url, "fl/cnn", "amd64")
    push_model_artifact(registry.url, "fl/cnn-weights", "v3")
    c = client(root, registry=registry.host)
    rows = {r["ref"]: r for r in c.get("/api/registry").json()["rows"]}
    assert rows["fl/cnn:arm64"]["digest"] == digest and rows["fl/cnn:arm64"]["size"] == size
    assert rows["fl/cnn:arm64"]["kind"] == "image" and rows["fl/cnn:arm64"]["task"] == "fl"
    model = rows["fl/cnn-weights:v3"]
    assert model["kind"] == "artifact" and model["artifact_type"] == "application/vnd.collab.model.v1"
    found = c.get("/api/registry", params={"task": "fl", "model": "cnn", "arch": "arm64"}).json()
    assert [r["ref"] for r in found["matches"]] == ["fl/cnn:arm64"] and "exists" in found["advice"]
    missing = c.get("/api/registry", params={"task": "fl", "model": "cnn", "arch": "riscv64"}).json()
    assert missing["matches"] == [] and "builds it" in missing["advice"]


def test_compare_for_scripts(root: Path) -> None:
    from pytest_collab.results.records import write_results_parquet

    reports = root / "reports"
    names = ["20260101-120000-aaaaaa", "20260101-130000-bbbbbb", "20260101-140000-cccccc"]
    for name, accuracy in zip(names, (0.90, 0.90, 0.70)):
        run = fake_run(reports, name)
        journal = run / "results.jsonl"
        journal.write_text(json.dumps({"run": name, "test": "testcases/x/test_x.py::test_a", "testcase": "x",
                                       "record": 0, "timestamp": 1.0, "accuracy": accuracy}) + "\n")
        write_results_parquet([journal], run / "results.parquet")
    c = client(root)
    got = c.get("/api/compare", params=[("run", n) for n in names]).json()
    assert [(g["baseline"], g["run"], g["passed"]) for g in got] == [(names[0], names[1], True),
                                                                     (names[0], names[2], False)]
    assert got[1]["failed_metrics"] == ["accuracy"] and any("accuracy" in line for line in got[1]["table"])
    page = c.get("/compare", params=[("run", n) for n in names])
    assert page.status_code == 200 and page.text.count("<section class='compare'>") == 2
    one = c.get("/compare", params={"run": names[0]})
    assert one.status_code == 400 and "two or more runs" in one.text
