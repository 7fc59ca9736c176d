"""A device that failed its connection is set aside: one connect timeout, not one per test.

The blackholed device is an sshd in a namespace whose link is cut before the run (SYNs
vanish: the slowest failure there is); the healthy one is a loopback sshd.
"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

SUITE = """
import pytest

@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.devices(rpi=1)
def test_needs_blackholed(collab, n):
    collab.start("rpi", "prog.py").wait(timeout=30)

@pytest.mark.devices(server=1)
def test_healthy_device_still_runs(collab):
    collab.start("server", "prog.py").wait(timeout=30)
"""


def test_blackholed_device_errors_once_then_is_quarantined(netns_sshd, ssh_lab, tmp_path):
    netns_sshd.netns.cut()
    case = tmp_path / "case"
    case.mkdir()
    (case / "prog.py").write_text("print('hello')\n")
    (case / "test_suite.py").write_text(SUITE)
    dead = netns_sshd.entry(name="blackholed", kind="rpi", lab=ssh_lab, connect_timeout=1.0)
    healthy = ssh_lab.write_profile(tmp_path / "h.yaml", kinds=("server",), python=sys.executable,
                                    workdir=str(tmp_path / "dev"))
    doc = yaml.safe_load(healthy.read_text())
    doc["devices"].append(dead)
    profile = tmp_path / "mixed.yaml"
    profile.write_text(yaml.safe_dump(doc))
    junit = tmp_path / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(case),
                           f"--lan={profile}", f"--junitxml={junit}", f"--collab-out={tmp_path / 'out'}"],
                          cwd=case, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert "1 passed, 3 errors" in out, out[-3000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    first, *later = (cases[f"test_needs_blackholed[{n}]"] for n in (1, 2, 3))
    assert first.find("error") is not None and first.find("failure") is None
    message = first.find("error").get("message", "") + (first.find("error").text or "")
    assert "blackholed" in message and "can not connect" in message, message
    assert float(first.get("time")) >= 1.0          # it paid the connect timeout, once
    for case_ in later:
        error = case_.find("error")
        assert error is not None, ET.tostring(case_).decode()
        text = error.get("message", "") + (error.text or "")
        assert "quarantined" in text and "blackholed" in text and "can not connect" in text, text
        assert float(case_.get("time")) < 0.5, ET.tostring(case_).decode()   # at once
    print(out[-2500:], [(n, c.get("time")) for n, c in cases.items()])
    assert Path(junit).is_file()


def test_failed_sync_is_a_setup_error_naming_the_device(ssh_lab, tmp_path):
    """The test case is synced before the test body: a device where it can not land makes
    the test an ERROR (JUnit <error>) naming the device, not a FAIL of the experiment."""
    case = tmp_path / "case"
    case.mkdir()
    (case / "prog.py").write_text("print('hello')\n")
    (case / "test_one.py").write_text(
        "import pytest\n\n@pytest.mark.devices(rpi=1)\ndef test_one(collab):\n"
        "    collab.start('rpi', 'prog.py').wait(timeout=30)\n")
    profile = ssh_lab.write_profile(tmp_path / "p.yaml", kinds=("rpi",), python=sys.executable,
                                    workdir="/proc/collab-no-such-place")
    junit = tmp_path / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(case),
                           f"--lan={profile}", f"--junitxml={junit}", f"--collab-out={tmp_path / 'out'}"],
                          cwd=case, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "1 error" in done.stdout, done.stdout[-3000:]
    assert "ERROR at setup of test_one" in done.stdout and "device 'dev0': sync" in done.stdout
    (testcase,) = ET.parse(junit).getroot().iter("testcase")
    assert testcase.find("error") is not None and testcase.find("failure") is None
