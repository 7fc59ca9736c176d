"""Ordered deployment on the local lab: readiness, failures, and teardown that leaves nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest_plugins = ["pytester"]

TREE_PROGRAM = """
import os, subprocess, sys, time
pids = [os.getpid()]
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)]
kids.append(subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"]))
pids += [k.pid for k in kids]
with open(sys.argv[1], "w") as f:
    f.write(" ".join(map(str, pids)))
print("READY", flush=True)
time.sleep(600)
"""

HANGING_TEST = """
import pytest

@pytest.mark.devices(rpi=1)
def test_hangs(collab, tmp_path_factory):
    collab.start("rpi", "tree.py", {pidfile!r}, ready="READY")
    import time
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_leaves_no_orphans_and_keeps_metrics(pytester: pytest.Pytester, sig: int) -> None:
    pidfile = pytester.path / "pids.txt"
    pytester.makepyfile(tree=TREE_PROGRAM, test_hang=HANGING_TEST.format(pidfile=str(pidfile)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collab-out=out", "--collab-hz=20"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert _wait_for(pidfile.exists, 60), "the device program never started"
        time.sleep(1.0)  # let the wrapper take samples
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(_alive(p) for p in pids)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_for(lambda: not any(_alive(p) for p in pids), 15), (
        f"orphans left: {[p for p in pids if _alive(p)]}\n{out}")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    import pandas as pd

    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert (metrics["metric"] == "procs").any()
    assert metrics.loc[metrics["metric"] == "procs", "value"].max() >= 3


def test_program_dying_before_ready_fails_with_its_last_lines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        bad="print('loading model'); print('boom: no such file model.pt'); raise SystemExit(3)",
        test_bad="""
            import pytest

            @pytest.mark.devices(server=1)
            def test_bad(collab):
                collab.start("server", "bad.py", ready="READY")
        """,
    )
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*ProgramFailed: program 'bad' on device 'server-1': exited with code 3 before it was ready*",
        "*boom: no such file model.pt*",
    ])


def test_ready_timeout_names_the_rule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        slow="import time; time.sleep(60)",
        test_slow="""
            import pytest

            @pytest.mark.devices(server=1)
            def test_slow(collab):
                collab.start("server", "slow.py", ready="NEVER", ready_timeout=1)
        """,
    )
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not ready after 1 s (waiting for an output line matching 'NEVER')*"])


ORDER_TEST = """
import json, pytest, time

@pytest.mark.devices(server=1, rpi=2)
def test_order(collab):
    server = collab.start("server", "srv.py", ready=collab.port({port}), wait=False)
    clients = [collab.start(f"rpi#{{i}}", "cli.py", {port}, after=server, wait=False) for i in (1, 2)]
    for c in clients:
        c.wait(timeout=60)
        assert c.results()[0]["connected"] is True
    assert server.port == {port}
    assert [c.device.name for c in clients] == ["rpi-1", "rpi-2"]
"""

SERVER = """
import socket, time
time.sleep(1.0)                          # warm-up before the port opens
s = socket.create_server(("127.0.0.1", {port}))
while True:
    conn, _ = s.accept(); conn.close()
"""

CLIENT = """
import json, socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
print("COLLAB_RESULT " + json.dumps({{"connected": True}}))
"""


def test_clients_start_only_after_the_server_port_accepts(pytester: pytest.Pytester) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pytester.makepyfile(srv=SERVER.format(port=port), cli=CLIENT.format(),
                        test_order=ORDER_TEST.format(port=port))
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(passed=1)


def test_killed_program_keeps_its_metrics(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        burn="""
            import os, time
            print("READY", flush=True)
            end = time.time() + 60
            while time.time() < end:
                pass
        """,
        test_kill="""
            import os, signal, time, pytest
            from pytest_collab.errors import ProgramFailed

            @pytest.mark.devices(rpi=1)
            def test_kill(collab):
                p = collab.start("rpi", "burn.py", ready="READY")
                time.sleep(1.0)
                os.kill(p.pid, signal.SIGKILL)
                with pytest.raises(ProgramFailed, match="killed by signal 9"):
                    p.wait(timeout=30)
        """,
    )
    result = pytester.runpytest("--collab-out=out", "--collab-hz=20")
    result.assert_outcomes(passed=1)
    import pandas as pd

    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    metrics = pd.read_parquet(run / "metrics.parquet")
    cpu = metrics.loc[metrics["metric"] == "cpu_percent", "value"]
    user = metrics.loc[metrics["metric"] == "cpu_user_s", "value"]
    # ~1 s of a busy loop before the kill, at 20 Hz: samples up to the kill are all there
    # (how much CPU the burner got depends on the machine's load, so only "it burned").
    assert len(cpu) >= 10 and cpu.max() > 0 and user.max() > 0.1
    log = next((run / "logs").rglob("rpi-1.burn.log")).read_text()
    assert "READY" in log


def test_failure_names_the_program_that_died_first_then_the_others_trimmed(pytester: pytest.Pytester) -> None:
    """Killing the server makes the client fail: the error leads with the server and its
    signal, then the client's last lines, trimmed (not 40 lines of client and no server)."""
    pytester.makepyfile(
        server="""
            import time
            print("server warming up", flush=True)
            print("READY", flush=True)
            time.sleep(120)
        """,
        client="""
            import os, sys, time
            pid = int(sys.argv[1])
            while os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)
            for i in range(60):
                print(f"client noise {i} " + "x" * 500, flush=True)
            print("client: lost the server", flush=True)
            raise SystemExit(1)
        """,
        test_pair="""
            import os, signal, pytest

            @pytest.mark.devices(server=1, rpi=1)
            def test_pair(collab):
                server = collab.start("server", "server.py", ready="READY")
                client = collab.start("rpi", "client.py", server.pid, after=server, wait=False)
                os.kill(server.pid, signal.SIGKILL)
                client.wait(timeout=60)
        """,
    )
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    head = ("ProgramFailed: program 'server' on device 'server-1': was killed by signal 9 (SIGKILL) "
            "(the first of this test's programs to die)")
    assert head in text, text[-4000:]
    assert "--- then program 'client' on device 'rpi-1' exited with code 1 ---" in text
    assert "client: lost the server" in text
    assert text.index(head) < text.index("client: lost the server")
    # the failure section only: under CI=true pytest prints the whole message again in its summary
    failures = text.split("short test summary info")[0]
    noise = [line for line in failures.splitlines() if "client noise" in line]
    assert 0 < len(noise) <= 4, noise                     # the client's last 5 lines only
    assert all(len(line) < 400 for line in noise)         # each cut


MANY_TEST = """
import json, pathlib, pytest

@pytest.mark.devices(rpi=3)
def test_many(collab):
    progs = collab.start_many([collab.spec(d, "echo.py", d.name, ready=r"^READY (\\S+)")
                               for d in collab.devices["rpi"]])
    assert [p.match[1] for p in progs] == ["rpi-1", "rpi-2", "rpi-3"]
    assert [p.name for p in progs] == ["echo", "echo-2", "echo-3"]
    late = collab.start_many([collab.spec("rpi#1", "echo.py", "x", name="late")], after=progs, wait=False)
    assert late[0].wait(timeout=60) == 0
"""

ECHO = """
import sys, time
print("READY", sys.argv[1], flush=True)
time.sleep(0.5)
"""


def test_start_many_starts_one_program_per_device_in_order(pytester: pytest.Pytester) -> None:
    import json

    pytester.makepyfile(echo=ECHO, test_many=MANY_TEST)
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(passed=1)
    run_json = pytester.path / "out" / "latest" / "run.json"
    [entry] = json.loads(run_json.read_text())["tests"].values()
    assert [(p["name"], p["device"]) for p in entry["programs"]] == [
        ("echo", "rpi-1"), ("echo-2", "rpi-2"), ("echo-3", "rpi-3"), ("late", "rpi-1")]
