"""A secret given to collab.start(env=...) reaches the device program, and nowhere else.

Over a real sshd: the value is not in any command line on the device while the program
runs (``ps``), and a profile's ``secret_env`` makes every artifact of the run show
``***`` instead: logs, raw wrapper lines, results.parquet, run.json, the report, JUnit.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

SHOW = """
import json, os, sys, time
from pathlib import Path
tok = os.environ.get("COLLAB_TEST_TOKEN", "")
print("token=" + tok, flush=True)
print("COLLAB_RESULT " + json.dumps({"token": tok, "token_len": len(tok)}), flush=True)
Path(sys.argv[1]).write_text("x")
print("READY", flush=True)
deadline = time.time() + 60
while not Path(sys.argv[2]).exists() and time.time() < deadline:
    time.sleep(0.1)
"""

SUITE = """
import os
import pytest

TOKEN = os.environ["COLLAB_TEST_TOKEN"]

@pytest.mark.devices(rpi=1)
def test_secret_reaches_program(collab):
    prog = collab.start("rpi", "show.py", {started!r}, {go!r}, env={{"COLLAB_TEST_TOKEN": TOKEN}},
                        ready="READY")
    prog.wait(timeout=60)
    row = prog.results()[0]
    assert row["token_len"] == len(TOKEN)          # the program got the real value
    print("the test sees", TOKEN)
    collab.record(token=TOKEN, echoed=row["token"])

@pytest.mark.devices(rpi=1)
def test_failure_message_mentions_it(collab):
    assert False, "the token is " + TOKEN
"""


def _command_lines() -> str:
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                pass
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return "\n".join(lines) + "\n" + ps


def test_secret_is_never_on_a_command_line_nor_in_any_artifact(ssh_lab, tmp_path):
    token = "s3ntinel-" + uuid.uuid4().hex
    case = tmp_path / "case"
    case.mkdir()
    started, go = case / "started", case / "go"
    (case / "show.py").write_text(SHOW)
    (case / "test_secret.py").write_text(SUITE.format(started=str(started), go=str(go)))
    profile = ssh_lab.write_profile(tmp_path / "sec.yaml", kinds=("rpi",), python=sys.executable,
                                    workdir=str(tmp_path / "dev"))
    doc = yaml.safe_load(profile.read_text())
    doc["secret_env"] = ["COLLAB_TEST_TOKEN"]
    profile.write_text(yaml.safe_dump(doc))
    out_dir, junit = tmp_path / "out", tmp_path / "junit.xml"
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(case), f"--lan={profile}",
         f"--collab-out={out_dir}", "--collab-report=html", f"--junitxml={junit}",
         "-o", "junit_logging=all"],
        cwd=case, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLLAB_TEST_TOKEN": token})
    try:
        deadline = time.monotonic() + 90
        while not started.exists() and inner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), inner.communicate(timeout=30)[0][-3000:]
        seen = _command_lines()          # the program runs on the device right now
        go.write_text("go")
        out, _ = inner.communicate(timeout=120)
    finally:
        if inner.poll() is None:
            inner.kill()
    assert "show.py" in seen and token not in seen
    assert "1 failed, 1 passed" in out, out[-3000:]
    assert token not in out
    run = (out_dir / "latest").resolve()
    files = [p for p in run.rglob("*") if p.is_file()] + [junit]
    assert {"run.json", "results.parquet", "report.html"} <= {p.name for p in files}
    assert any(p.suffix == ".log" for p in files) and any(p.suffix == ".jsonl" for p in files)
    leaks = [str(p) for p in files if token.encode() in p.read_bytes()]
    assert not leaks, f"the secret is in {leaks}"
    # It was there to leak: the program printed it, the test recorded and printed it.
    log = next(p for p in files if p.suffix == ".log").read_text()
    assert "token=***" in log
    import pandas as pd

    results = pd.read_parquet(run / "results.parquet")
    assert list(results["token"]) == ["***"] and list(results["echoed"]) == ["***"]
    xml = junit.read_text()
    assert "the token is ***" in xml and "the test sees ***" in xml


def test_run_and_spawn_env_travel_on_stdin_not_in_ps(ssh_lab, tmp_path):
    """While a remote command runs (under ``timeout``, as every bounded step does) its env
    values are in its environment, and in no command line; odd characters survive."""
    import threading

    from pytest_collab.transport.ssh import connect

    known = ssh_lab.known_hosts(tmp_path / "kh")
    dev = connect(ssh_lab.device(0, known_hosts=str(known)))
    token = "s3ntinel-" + uuid.uuid4().hex
    odd = "it's a \"quoted\" $HOME `x`\nsecond line"
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(
        r=dev.run('sleep 2; printf "%s|%s" "$TOK" "$ODD"', env={"TOK": token, "ODD": odd}, timeout=30)))
    worker.start()
    time.sleep(1.0)
    seen = _command_lines()
    worker.join(30)
    assert "sleep 2" in seen and token not in seen
    assert result["r"].stdout == f"{token}|{odd}", result["r"]   # type: ignore[union-attr]
    spawned = dev.spawn(["sh", "-c", 'echo "$TOK"; sleep 2'], cwd=str(tmp_path), env={"TOK": token})
    lines = spawned.lines()
    assert next(lines) == token
    assert token not in _command_lines()
    spawned.kill()
    dev.close()


def test_profile_secret_env_takes_names_only_and_round_trips(tmp_path):
    import pytest

    from pytest_collab.errors import ProfileError
    from pytest_collab.lan.profile import LAN, load_profile, save_profile

    doc = {"name": "s", "secret_env": ["HF_TOKEN"], "devices": [{"name": "d", "kind": "rpi"}]}
    lan = LAN.from_dict(doc)
    assert lan.secret_env == ("HF_TOKEN",)
    save_profile(lan, tmp_path / "s.yaml")
    assert load_profile(str(tmp_path / "s.yaml"), tmp_path).secret_env == ("HF_TOKEN",)
    with pytest.raises(ProfileError, match=r"secret_env\[0\]: .*not an environment variable name"):
        LAN.from_dict({**doc, "secret_env": ["hf_abc123-the-token-itself"]})


def test_redactor_masks_raw_and_json_escaped_forms():
    import json

    from pytest_collab.secrets import Redactor

    redact = Redactor(["TOK"])
    redact.learn({"TOK": 'pa"ss\\wörd', "OTHER": "visible"})

    raw = json.dumps({"line": 'token pa"ss\\wörd'})          # as the wrapper writes it
    assert redact('token pa"ss\\wörd') == "token ***"
    assert json.loads(redact(raw)) == {"line": "token ***"}
    assert redact.value({"a": ["visible", 'pa"ss\\wörd']}) == {"a": ["visible", "***"]}
