"""Device packages: a program on the local lab imports the device kit and the wrapper by
their device names, never from pytest_collab, and the kit imports with pytest absent."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_collab.runtime.shipping import device_packages, local_root, with_pythonpath


def test_local_root_links_every_device_package() -> None:
    root = local_root()
    for name, folder in device_packages().items():
        assert (root / name).resolve() == folder
    assert local_root() == root  # idempotent: a second session reuses the links


def test_devicekit_imports_on_a_bare_python_without_pytest(tmp_path) -> None:
    # -S and -I: no site-packages (no pytest, numpy or torch), only the shipped folders
    env = with_pythonpath({}, str(local_root()))
    code = ("import sys, collab_devicekit, collab_wrapper; "
            "assert 'pytest' not in sys.modules and 'pytest_collab' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-S", "-c", code], env={**env, "PATH": os.environ["PATH"]},
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_with_pythonpath_keeps_an_existing_value() -> None:
    assert with_pythonpath({"PYTHONPATH": "/a"}, "/r", ":")["PYTHONPATH"] == "/r:/a"
    assert with_pythonpath({}, "/r", ":")["PYTHONPATH"] == "/r"


def test_program_on_the_local_lab_imports_the_devicekit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(prog="""
import collab_devicekit, pathlib
print('KIT', pathlib.Path(collab_devicekit.__file__).resolve().parent.name, flush=True)
""")
    pytester.makepyfile(test_kit="""
import pytest

@pytest.mark.devices(rpi=1)
def test_kit(collab):
    p = collab.start("rpi", "prog.py", ready=r"KIT (\\w+)")
    assert p.match[1] == "devicekit"
    p.wait(timeout=30)
""")
    result = pytester.runpytest("--lan=local", f"--collab-out={pytester.path / 'reports'}")
    result.assert_outcomes(passed=1)
