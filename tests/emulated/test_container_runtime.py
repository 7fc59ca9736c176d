"""The container runtime on emulated devices: ordered deploy with readiness, early death,
and the label sweep after a controller killed with SIGKILL."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_collab.deploy import Port, Program, ProgramContext
from pytest_collab.deployment import Deployment
from pytest_collab.errors import ProgramFailed
from pytest_collab.runtime import labels as lbl
from pytest_collab.runtime.container import create

SERVER = """import socket, sys
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)
print("READY", flush=True)
while True:                      # the controller's port probe is a connection too
    c, addr = s.accept(); c.sendall(f"hello {addr[0]}".encode()); c.close()
"""
CLIENT = """import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
print("COLLAB_RESULT", '{"me": "%s", "reply": "%s"}' % (c.getsockname()[0], c.recv(100).decode()))
"""


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cases") / "emulated-probe"
    folder.mkdir()
    (folder / "server.py").write_text(SERVER)
    (folder / "client.py").write_text(CLIENT)
    (folder / "dies.py").write_text("import sys\nprint('starting', flush=True)\nsys.exit(3)\n")
    (folder / "sleeper.py").write_text("import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    return folder


@pytest.fixture
def deploy(lab, lab_client, case_dir, tmp_path):
    """launch(device_name, program, *args, ready=...) -> Program, on runtime: docker."""
    runtimes = {}
    ctx = ProgramContext(run_id="emu-test", test="t", log_dir=tmp_path, sink=None)

    def launcher(*, device: str, program: str, args: tuple = (), ready=None) -> Program:
        dev = dataclasses.replace(lab.device(device), runtime="docker")
        if device not in runtimes:
            runtimes[device] = create(dev, None, "emu-test", client=lab_client, progress=lambda line: None)
        rt = runtimes[device]
        code = rt.prepare(case_dir)
        argv = [rt.python, f"{code}/{program}", *map(str, args)]
        return Program(Path(program).stem, dev, dev.kind, argv,
                       rt.launch(argv, cwd=code, env={}, hz=5, name=Path(program).stem), ctx, ready)

    deployment = Deployment(60, launcher)
    deployment.runtimes = runtimes  # type: ignore[attr-defined]  (provenance checks)
    yield deployment
    deployment.stop_all()
    for rt in runtimes.values():
        rt.close()


def test_ordered_container_deploy_with_readiness(deploy, lab, lab_client) -> None:
    server = deploy.start(device="server-1", program="server.py", args=(7000,), ready=Port(7000))
    assert server.ready
    client = deploy.start(device="rpi-1", program="client.py",
                          args=(lab.device("server-1").address, 7000), after=server, ready=None)
    assert client.wait(timeout=60) == 0
    [row] = client.results()
    rpi = lab.device("rpi-1").address
    assert row == {"me": rpi, "reply": f"hello {rpi}"}   # the program has the device's address
    digest = deploy.runtimes["rpi-1"].image_digest          # provenance of every result row
    assert digest.startswith("sha256:") and digest == lab_client.images.get(digest).id
    assert not server.finished
    server.stop(grace=2)
    assert server.finished and server.exit_signal == 15     # the wrapper ended it on stdin EOF


def test_container_dying_before_ready(deploy) -> None:
    with pytest.raises(ProgramFailed, match=r"device 'jetson-1'.*exited with code 3 before it was ready") as info:
        deploy.start(device="jetson-1", program="dies.py", ready=r"^NEVER")
    assert "starting" in info.value.tail


KILLED_RUN = """
import sys, time, dataclasses
from pathlib import Path
from pytest_collab.lan.profile import load_profile
from pytest_collab.runtime.container import create
lan = load_profile("emulated", Path(sys.argv[1]))
dev = dataclasses.replace(lan.device("rpi-2"), runtime="docker")
rt = create(dev, None, sys.argv[2], progress=lambda line: None)
code = rt.prepare(Path(sys.argv[3]))
sp = rt.launch(["python3", code + "/sleeper.py"], cwd=code, env={}, hz=2, name="sleeper")
print(sp.id, flush=True)
time.sleep(600)
"""


def test_killed_run_is_swept(lab, lab_client, case_dir) -> None:
    run_id = f"killed-{os.getpid()}"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(root), run_id, str(case_dir)],
                            stdout=subprocess.PIPE, text=True)
    try:
        cid = proc.stdout.readline().strip()
        assert cid, "the child run printed no container id"
        assert lab_client.containers.get(cid).labels[lbl.RUN_ID] == run_id
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Dead man's switch: the controller's socket closed, the wrapper saw stdin EOF and ended.
    deadline = time.monotonic() + 20
    while lab_client.containers.get(cid).status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lab_client.containers.get(cid).status == "exited"
    result = lbl.sweep(lab_client)               # no run id: every run whose controller died
    assert any(run_id in item for item in result.removed), result
    assert not lab_client.containers.list(all=True, filters={"label": f"{lbl.RUN_ID}={run_id}"})
    assert not any(run_id in item for item in lbl.sweep(lab_client).removed)   # nothing twice
