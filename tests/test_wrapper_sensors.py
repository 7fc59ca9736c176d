"""Board power sources of the wrapper against a fake board (tests/fake_board.py).

RAPL, hwmon, INA3221 and thermal files under ``PYTEST_COLLAB_SYSFS_ROOT``, a fake
``pynvml`` on ``sys.path``, an external meter as a command and as a FIFO standing in for
a serial port; and a whole wrapper run over the fake board.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from fake_board import PACKAGE_RANGE_UJ, WATTS, FakeBoard

from pytest_collab.errors import ProfileError
from pytest_collab.lan.profile import Device
from pytest_collab.lan.schema import check_document
from pytest_collab.wrapper import meter, nvml, probing, rapl
from pytest_collab.wrapper.meter import Meter
from pytest_collab.wrapper.sensors import NO_POWER, Sensors

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBoard]:
    fake = FakeBoard(tmp_path)
    monkeypatch.setenv(probing.SYSFS_ROOT_ENV, str(fake.root))
    yield fake
    fake.stop()


@pytest.fixture
def fake_nvml(board: FakeBoard, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(board.nvml_dir))
    sys.modules.pop("pynvml", None)
    yield board
    sys.modules.pop("pynvml", None)


def until(check: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError("condition not met within %.0f s" % timeout)


def test_board_sources_are_found_under_the_sysfs_root(board: FakeBoard) -> None:
    found = Sensors()
    values: Dict[str, float] = {}
    found.read(values)
    assert values["power_w.fakechip.board"] == 2.5
    assert values["power_w.VDD_IN"] == 6.0
    assert values["temp_c.cpu-thermal"] == 47.5
    assert {"energy_j.rapl.package-0", "energy_j.rapl.package-0.core",
            "energy_j.rapl.package-0.dram"} <= set(values)
    assert found.units["energy_j.rapl.package-0"] == "J" and found.units["power_w.rapl.package-0"] == "W"
    assert NO_POWER not in found.notes


def test_empty_root_records_nothing_and_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(probing.SYSFS_ROOT_ENV, str(tmp_path))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "nvml" not in p])
    found = Sensors()
    values: Dict[str, float] = {}
    for _ in range(3):
        found.read(values)
    assert not found and values == {} and found.units == {}
    assert found.notes == [NO_POWER]


def test_rapl_counter_wraps_around_its_range(board: FakeBoard) -> None:
    reader = rapl.rapl()
    assert isinstance(reader, probing.CounterReader)
    start = board.read_counter("package")
    board.step(1.0)  # 6 J on a counter 3 J below its range: it wraps
    assert board.read_counter("package") < start
    first = reader()
    board.step(0.5)
    second = reader()
    assert first["energy_j.rapl.package-0"] == pytest.approx(WATTS["package"] * 1.0, abs=1e-6)
    assert second["energy_j.rapl.package-0"] == pytest.approx(WATTS["package"] * 1.5, abs=1e-6)
    assert second["energy_j.rapl.package-0.dram"] == pytest.approx(WATTS["dram"] * 1.5, abs=1e-6)
    assert reader.units["power_w.rapl.package-0.core"] == "W"


def test_counter_power_from_differences_and_unknown_range_skips_the_step() -> None:
    wrapped = probing.Counter(wrap=PACKAGE_RANGE_UJ * 1e-6)
    wrapped.update(19.0, now=100.0)
    wrapped.update(1.0, now=100.5)  # wrapped: 1 J to the range's end, 1 J after
    assert wrapped.total == pytest.approx(2.0) and wrapped.power == pytest.approx(4.0)
    unknown = probing.Counter()
    unknown.update(19.0, now=0.0)
    unknown.update(1.0, now=1.0)
    unknown.update(3.0, now=2.0)
    assert unknown.total == pytest.approx(2.0)  # the backwards step is not guessed


def test_unreadable_rapl_file_is_a_permission_note_naming_file_and_fix(
        board: FakeBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = str(board.counters["dram"])
    real_open = os.open

    def deny(path: Any, *args: Any, **kwargs: Any) -> int:  # tests run as root: deny by hand
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    found = Sensors()
    assert "energy_j.rapl.package-0" in found.units and "energy_j.rapl.package-0.dram" not in found.units
    notes = [n for n in found.notes if "permission denied" in n]
    assert len(notes) == 1
    assert "/sys/class/powercap/intel-rapl:0:1/energy_uj" in notes[0] and str(board.root) not in notes[0]
    assert "chmod a+r" in notes[0] and "root" in notes[0]


def test_fake_nvml_reports_power_and_the_energy_counter(fake_nvml: FakeBoard) -> None:
    reader = nvml.nvml()
    assert reader is not None
    first = reader()
    fake_nvml.step(2.0)  # 30 W for 2 s: 60 J on the GPU's counter
    second = reader()
    assert first == {"power_w.nvml.gpu0": 30.0, "energy_j.nvml.gpu0": 0.0}
    assert second["energy_j.nvml.gpu0"] == pytest.approx(60.0)
    fake_nvml.set_gpu(broken=True)
    sys.modules.pop("pynvml", None)
    probing.take_notes()
    assert nvml.nvml() is None
    assert any("Driver Not Loaded" in n for n in probing.take_notes())


def test_without_pynvml_there_is_no_gpu_source_and_no_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as if not installed
    probing.take_notes()
    assert nvml.nvml() is None and probing.take_notes() == []


def test_meter_command_is_read_and_rerun(board: FakeBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTS", "3500")
    m = Meter({"command": str(board.meter), "period_s": 0.1, "scale": 0.001})
    try:
        assert until(m) == {"power_w.meter": 3.5}
        monkeypatch.setenv("WATTS", "1000")  # a command that prints once is run again
        assert until(lambda: m() == {"power_w.meter": 1.0})
    finally:
        m.close()


def test_meter_goes_quiet_when_stale(board: FakeBoard) -> None:
    m = Meter({"command": "echo 5; exec sleep 30", "period_s": 0.1})
    try:
        assert until(m) == {"power_w.meter": 5.0}
        m.stale_s = 0.2
        time.sleep(0.3)
        assert m() == {}
        pid = m._pid
        assert pid is not None and os.path.exists("/proc/%d" % pid)  # the sleep, still running
    finally:
        m.close()
    assert m._pid is None and not os.path.exists("/proc/%d" % pid)  # the command was ended and reaped


def test_meter_command_without_readings_is_reported_once() -> None:
    problems: List[str] = []
    m = Meter({"command": "echo starting; exit 3", "period_s": 0.05}, on_problem=problems.append)
    try:
        until(lambda: problems)
        time.sleep(0.5)  # ten more failing runs: still one report
        assert m() == {} and len(problems) == 1
        assert "echo starting; exit 3" in problems[0] and "exit code 3" in problems[0]
    finally:
        m.close()


def test_meter_command_runs_without_a_shell_only_when_it_is_a_plain_program_line() -> None:
    echo = shutil.which("echo")
    assert meter.command_argv("echo 5  W") == [echo, "5", "W"]
    for shell in ("echo 5; exit 3", "echo $W", "read-meter > /tmp/x", "W=1 echo 5", "no-such-meter-program 5"):
        assert meter.command_argv(shell) == ["/bin/sh", "-c", shell]


def test_meter_script_without_a_shebang_is_run_by_the_shell(tmp_path: Path) -> None:
    script = tmp_path / "meter"
    script.write_text("echo 6.5\n")  # no #! line: exec fails, as it does for posix_spawn
    script.chmod(0o755)
    m = Meter({"command": str(script), "period_s": 0.1})
    try:
        assert meter.command_argv(str(script)) == [str(script)]
        assert until(m) == {"power_w.meter": 6.5}
    finally:
        m.close()


def test_spawned_command_gets_default_sigpipe_and_no_inherited_descriptor(tmp_path: Path) -> None:
    r, w = os.pipe()
    # a descriptor left open and inheritable, as by a careless parent; a fresh one (never a
    # fixed number: dup2 onto it would clobber whatever this pytest process holds there)
    spare = os.dup(w)
    os.set_inheritable(spare, True)
    try:
        pid, fd, wait = meter.spawn(["/bin/sh", "-c", "grep SigIgn /proc/self/status; ls /proc/self/fd"], [spare])
        out = b""
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
        os.close(fd)
        assert wait() == 0
    finally:
        for d in (r, w, spare):
            os.close(d)
    ignored = int(out.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))  # the wrapper ignores SIGPIPE; the command must not
    assert str(spare) not in out.decode().split()[2:]
    assert os.getsid(0) != pid  # it had a session of its own


def test_meter_close_ends_what_the_command_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    m = Meter({"command": "sleep 30 & echo $! > %s; echo 2; wait" % pidfile, "period_s": 0.1})
    assert until(m) == {"power_w.meter": 2.0}
    pid = int(pidfile.read_text())
    m.close()
    assert until(lambda: not os.path.exists("/proc/%d" % pid) or
                 open("/proc/%d/stat" % pid).read().split(") ")[1].startswith("Z"), timeout=5)


def test_meter_serial_path_read_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(probing.SYSFS_ROOT_ENV, str(tmp_path))
    (tmp_path / "dev").mkdir()
    fifo = tmp_path / "dev" / "ttyUSB0"
    os.mkfifo(fifo)
    m = Meter({"serial": "/dev/ttyUSB0", "baud": 9600})
    try:
        with open(fifo, "w") as port:
            for line in ("boot banner\n", "4.20W 0.84A 5.00V\n"):
                port.write(line)
                port.flush()
            assert until(m) == {"power_w.meter": 4.2}
    finally:
        m.close()
    probing.take_notes()
    missing = Meter({"serial": "/dev/ttyACM7"})
    notes = probing.take_notes()
    assert missing() == {} and len(notes) == 1
    assert "/dev/ttyACM7" in notes[0] and "dialout" in notes[0]


def test_a_bad_meter_spec_given_in_code_is_a_note_not_a_crash(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(probing.SYSFS_ROOT_ENV, str(tmp_path))
    found = Sensors(meter={"command": "x", "serial": "/dev/ttyUSB0"})
    assert any("power_meter" in n and "exactly one" in n for n in found.notes)
    assert NO_POWER in found.notes


@pytest.mark.parametrize("line,watts", [(b"5.1\n", 5.1), (b"P=12.5W\r\n", 12.5), (b"-0.3", -0.3),
                                        (b"1e1 W", 10.0), (b"no number here", None)])
def test_meter_line_parsing(line: bytes, watts: Any) -> None:
    assert meter.parse_line(line) == watts


@pytest.mark.parametrize("spec,problem", [
    ({"command": "x", "serial": "/dev/ttyUSB0"}, "exactly one"),
    ({}, "exactly one"),
    ({"comand": "x"}, "unknown key 'comand'"),
    ({"command": "x", "baud": 9600}, "only for a 'serial:'"),
    ({"serial": "/dev/ttyUSB0", "period_s": 0}, "period_s"),
    ("meter.sh", "expected a mapping"),
])
def test_power_meter_in_the_profile_is_checked(spec: Any, problem: str) -> None:
    doc = {"name": "lab", "devices": [{"name": "rpi4", "kind": "rpi", "power_meter": spec}]}
    with pytest.raises(ProfileError) as err:
        check_document(doc, "lab.yaml")
    assert "devices[0].power_meter" in str(err.value) and problem in str(err.value)


def test_power_meter_reaches_the_wrapper_command_line(tmp_path: Path) -> None:
    from pytest_collab.runtime.process import ProcessRuntime

    doc = check_document({"name": "lab", "devices": [
        {"name": "rpi4", "kind": "rpi", "power_meter": {"serial": "/dev/ttyUSB0", "baud": 9600}}]}, "lab.yaml")
    device = Device(**doc["devices"][0])
    spawned: List[List[str]] = []

    class Transport:
        def spawn(self, argv: List[str], **_kw: Any) -> None:
            spawned.append(argv)

    ProcessRuntime(device, Transport(), "run").launch(["prog"], cwd=".", env={}, hz=10, name="p")  # type: ignore[arg-type]
    argv = spawned[0]
    spec = json.loads(argv[argv.index("--power-meter") + 1])
    assert spec == {"serial": "/dev/ttyUSB0", "baud": 9600} and argv[-2:] == ["--", "prog"]
    assert meter.cli_args({}) == []


def wrapper_run(board: FakeBoard, *opts: str, program: str = "import time; time.sleep(1.5)",
                nvml_path: bool = True) -> List[dict]:
    env = dict(os.environ, PYTEST_COLLAB_SYSFS_ROOT=str(board.root),
               PYTHONPATH=os.pathsep.join([str(ROOT)] + ([str(board.nvml_dir)] if nvml_path else [])))
    out = subprocess.run([sys.executable, "-m", "pytest_collab.wrapper", "--hz", "20", *opts, "--",
                          sys.executable, "-c", program],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=60, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_wrapper_run_over_a_fake_board_records_power_and_energy(board: FakeBoard) -> None:
    spec = json.dumps({"command": str(board.meter), "period_s": 0.2})
    board.drive()
    lines = wrapper_run(board, "--power-meter", spec)
    board.stop()
    start = lines[0]
    assert start["k"] == "start"
    units = start["units"]
    for name in ("power_w.rapl.package-0", "energy_j.rapl.package-0", "power_w.nvml.gpu0",
                 "energy_j.nvml.gpu0", "power_w.VDD_IN", "power_w.meter", "power_w.fakechip.board"):
        assert name in units and name in start["board"]
    assert units["energy_j.nvml.gpu0"] == "J" and units["power_w.meter"] == "W"
    assert not [o for o in lines if o["k"] == "note"]
    samples = [o for o in lines if o["k"] == "m"]
    assert len(samples) >= 20
    package = [(o["t"], o["v"]["energy_j.rapl.package-0"]) for o in samples if "energy_j.rapl.package-0" in o["v"]]
    assert all(b[1] >= a[1] for a, b in zip(package, package[1:])), "a wrap must never step back"
    (t0, e0), (t1, e1) = package[0], package[-1]
    assert e1 - e0 == pytest.approx(WATTS["package"] * (t1 - t0), rel=0.1)
    assert any(o["v"].get("power_w.meter") == 7.25 for o in samples)
    gpu = [o["v"]["power_w.nvml.gpu0"] for o in samples if "power_w.nvml.gpu0" in o["v"]]
    assert gpu and set(gpu) == {30.0}


def test_wrapper_reports_a_broken_meter_command_once(tmp_path: Path) -> None:
    empty = FakeBoard(tmp_path)
    empty.root = tmp_path / "nothing"
    empty.root.mkdir()
    spec = json.dumps({"command": "exit 127", "period_s": 0.1})
    lines = wrapper_run(empty, "--power-meter", spec, program="import time; time.sleep(1.2)", nvml_path=False)
    notes = [o["line"] for o in lines if o["k"] == "note"]
    assert len(notes) == 1 and "printed no reading" in notes[0] and "exit code 127" in notes[0]
    assert lines[0]["board"] == ["power_w.meter"]


def test_wrapper_without_sensors_says_so_once(tmp_path: Path) -> None:
    empty = FakeBoard(tmp_path)
    empty.root = tmp_path / "nothing"
    empty.root.mkdir()
    lines = wrapper_run(empty, program="import time; time.sleep(0.5)", nvml_path=False)
    said = [o for o in lines if o["k"] == "note"]
    assert [o["line"] for o in said] == [NO_POWER]
    assert not [o for o in lines if o["k"] == "out"]  # program output stays program output
    assert lines[0]["board"] == []
    samples = [o["v"] for o in lines if o["k"] == "m"]
    assert len(samples) >= 5 and not [k for v in samples for k in v if k.startswith(("power_w", "energy_j"))]

