"""The wrapper's heartbeat: over SSH a cut link gives no EOF, so silence on stdin must do.

Also the pieces of the env-on-stdin path that need no server.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from pytest_collab.transport.ssh import env_prelude


def _wrapper(*opts: str) -> subprocess.Popen:
    program = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    return subprocess.Popen([sys.executable, "-m", "pytest_collab.wrapper", *opts, "--", *program],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)


def _program_pid(proc: subprocess.Popen) -> int:
    assert proc.stdout is not None
    start = json.loads(proc.stdout.readline())
    assert start["k"] == "start"
    return int(start["pid"])


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_silent_stdin_ends_the_tree_within_the_heartbeat_bound() -> None:
    proc = _wrapper("--heartbeat", "1", "--grace", "1")
    try:
        child = _program_pid(proc)
        started = time.monotonic()
        proc.wait(timeout=10)                 # stdin stays open: no EOF, only silence
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 0.8 <= took < 4, took
    assert _gone(child)


def test_heartbeats_keep_the_program_running() -> None:
    proc = _wrapper("--heartbeat", "1")
    assert proc.stdin is not None
    try:
        child = _program_pid(proc)
        for _ in range(10):                   # 3 s of heartbeats, three times the bound
            proc.stdin.write(b"\n")
            proc.stdin.flush()
            time.sleep(0.3)
        assert proc.poll() is None and not _gone(child)
    finally:
        proc.stdin.close()                    # EOF: the old dead man's switch still works
        proc.wait(timeout=10)
    assert _gone(child)


def test_env_prelude_quotes_values_and_rejects_bad_names() -> None:
    text, payload = env_prelude({"A": "it's $HOME\nx", "B_2": ""}, read_timeout=5)
    assert text == f'eval "$(timeout 5 head -c {len(payload)})" || exit 125'
    done = subprocess.run(["sh", "-c", text + '; printf "%s|%s" "$A" "$B_2"'], input=payload,
                          capture_output=True, timeout=10)
    assert done.stdout.decode() == "it's $HOME\nx|"
    assert env_prelude({}) == ("", b"")
    with pytest.raises(ValueError, match="not valid"):
        env_prelude({"A;rm -rf /": "x"})

