"""pytest_collab.flower end to end on the local lab: a foreign app (no framework imports),
a ServerApp that crashes, a client killed mid-run, torch never loaded for a sklearn app.

One inner pytest session runs the scenarios (written to a temporary folder, each a
plain test using ``flower.run``) so the lab starts once; the outer tests read its JUnit
XML and the JSON each scenario writes. ``--fl-app`` on the shipped test case is a second
session. Measured on the shared 2-core box (load 8-11): the whole file 6.5-11 min.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BYO = ROOT / "testcases" / "federated_bring_your_own" / "app"

SCENARIOS = '''
import json, os, shutil, time
from pathlib import Path

import pytest
from pytest_collab import flower

BYO = Path(os.environ["FLOWER_BYO"])
OUT = Path(os.environ["FLOWER_OUT"])


def torch_mapped(pid):
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.devices(server=1, rpi=2)
def test_foreign_app(collab):
    run = flower.run(collab, BYO, rounds=2, timeout=300)
    execs = {n: p.pid for n, p in run.programs.items() if n.startswith(("clientapp", "serverapp"))}
    OUT.joinpath("foreign.json").write_text(json.dumps({
        "status": run.status, "flower_status": run.flower_status, "rounds": run.rounds,
        "clients": run.clients, "nodes": {str(k): v for k, v in run.nodes.items()},
        "torch_mapped": {n: torch_mapped(pid) for n, pid in execs.items()},
        "seconds_per_round": run.seconds_per_round()}))


@pytest.mark.devices(server=1, rpi=2)
def test_server_crash(collab, tmp_path):
    app = shutil.copytree(BYO, tmp_path / "crashing")
    server = app / "digits_sklearn" / "server_app.py"
    server.write_text(server.read_text().replace(
        "    num_rounds = ", "    raise RuntimeError('boom: this ServerApp crashes on purpose')\\n"
                            "    num_rounds = ", 1))
    flower.run(collab, app, rounds=2, timeout=120)


@pytest.mark.devices(server=1, rpi=2)
def test_killed_client(collab):
    crash = flower.crash_client(collab, "rpi-2", after_round=1)
    run = flower.run(collab, BYO, rounds=4, timeout=300, check=False)
    ended = time.monotonic()
    crash.join(5)
    OUT.joinpath("killed.json").write_text(json.dumps({
        "status": run.status, "error": run.error, "lost": run.lost, "node_id": crash.node_id,
        "seconds_to_end": None if crash.killed_at is None else ended - crash.killed_at,
        "rounds": [r["round"] for r in run.rounds]}))


@pytest.mark.devices(server=1, rpi=3)
def test_lost_client_with_continue(collab):
    crash = flower.crash_client(collab, "rpi-3", after_round=1)
    run = flower.run(collab, BYO, rounds=3, run_config={"min-nodes": 2}, min_clients=2,
                     on_lost="continue", timeout=240, check=False)
    crash.join(5)
    OUT.joinpath("continue.json").write_text(json.dumps({
        "status": run.status, "error": run.error, "lost": run.lost,
        "rounds": [r["round"] for r in run.rounds],
        "after_loss_s": [r.get("round_time_s") for r in run.rounds if r["round"] >= 2],
        "clients": sorted({(c["round"], c["client"]) for c in run.clients if c["round"]})}))
'''


def inner_pytest(args: list[str], out: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLOWER_BYO": str(BYO), "FLOWER_OUT": str(out),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
                           "--lan=local", f"--collab-out={out / 'runs'}",
                           f"--junitxml={out / 'junit.xml'}", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def outcomes(junit: Path) -> dict[str, str]:
    got = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kids = [c.tag for c in case]
        got[case.get("name", "")] = ("failed" if {"failure", "error"} & set(kids)
                                     else "skipped" if "skipped" in kids else "passed")
    return got


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, dict[str, str]]:
    pytest.importorskip("flwr")
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("flower")
    (out / "cases").mkdir()
    (out / "cases" / "test_scenarios.py").write_text(textwrap.dedent(SCENARIOS))
    done = inner_pytest([str(out / "cases")], out)
    return out, done, outcomes(out / "junit.xml")


def test_foreign_app_runs_two_rounds_measured(scenarios) -> None:
    out, done, result = scenarios
    assert result["test_foreign_app"] == "passed", done.stdout[-4000:]
    run = json.loads((out / "foreign.json").read_text())
    assert run["status"] == "completed" and "completed" in run["flower_status"]
    assert [r["round"] for r in run["rounds"]] == [0, 1, 2]       # from Flower's Result records
    assert run["rounds"][2]["server_accuracy"] > run["rounds"][0]["server_accuracy"]
    assert {"train_train_logloss", "eval_accuracy"} & set(run["rounds"][1]) or \
        "train_logloss" in run["rounds"][1]
    phases = {(c["client"], c["round"], c["phase"]) for c in run["clients"]}
    assert phases == {(d, r, p) for d in ("rpi-1", "rpi-2") for r in (1, 2)
                      for p in ("train", "evaluate")}
    for c in run["clients"]:
        assert c["bytes_sent"] > 1000 and c["bytes_received"] > 0 and c["time_s"] > 0
        assert run["nodes"][c["node_id"]] == c["client"]
    assert run["seconds_per_round"] is not None


def test_torch_is_not_imported_for_a_sklearn_app(scenarios) -> None:
    out, done, result = scenarios
    run = json.loads((out / "foreign.json").read_text())
    assert {c["heavy_modules"] for c in run["clients"]} == {""}   # in every task process
    assert run["torch_mapped"] and not any(run["torch_mapped"].values())  # nor the executors


def test_server_crash_fails_the_test_with_flowers_message(scenarios) -> None:
    out, done, result = scenarios
    assert result["test_server_crash"] == "failed"
    assert "FlowerRunFailed" in done.stdout and "finished:failed" in done.stdout, done.stdout[-4000:]
    assert "boom: this ServerApp crashes on purpose" in done.stdout


def test_killed_client_is_named_within_the_bound(scenarios) -> None:
    out, done, result = scenarios
    assert result["test_killed_client"] == "passed", done.stdout[-4000:]
    run = json.loads((out / "killed.json").read_text())
    assert run["status"] == "failed" and run["node_id"], run
    assert "rpi-2" in run["error"] and run["node_id"] in run["error"], run["error"]
    assert [x["device"] for x in run["lost"]] == ["rpi-2"]
    assert run["seconds_to_end"] < 15, run                          # policy fail: at once
    assert run["rounds"][-1] < 4, "the run ended early instead of waiting for its timeout"


def test_lost_client_with_continue_goes_on_while_min_clients_remain(scenarios) -> None:
    """3 clients, min_clients=2, rpi-3 killed after round 1: named, and the run completes
    on the two left (Flower counts the node offline after ~2 heartbeats of 10 s)."""
    out, done, result = scenarios
    assert result["test_lost_client_with_continue"] == "passed", done.stdout[-4000:]
    run = json.loads((out / "continue.json").read_text())
    assert run["status"] == "completed", run
    assert [x["device"] for x in run["lost"]] == ["rpi-3"] and run["lost"][0]["node_id"]
    assert run["rounds"] == [0, 1, 2, 3]
    assert {c for r, c in run["clients"] if r == 3} == {"rpi-1", "rpi-2"}
    assert all(t < 60 for t in run["after_loss_s"]), run   # bounded, not Flower's 3600 s


def test_fl_app_points_the_shipped_test_at_a_foreign_app(tmp_path: Path) -> None:
    pytest.importorskip("flwr")
    done = inner_pytest(["testcases/federated", f"--fl-app={BYO}", "--fl-rounds=2",
                         "-k", "clients2-iid"], tmp_path)
    assert outcomes(tmp_path / "junit.xml") == {"test_federated[clients2-iid-rounds2]": "passed"}, \
        done.stdout[-4000:]
    import pandas as pd

    results = pd.read_parquet((tmp_path / "runs" / "latest").resolve() / "results.parquet")
    rounds = results[results["kind"] == "round"]
    assert sorted(rounds["round"]) == [0, 1, 2] and "server_accuracy" in rounds
