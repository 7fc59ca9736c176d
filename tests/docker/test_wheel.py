"""The wheel carries everything the runtime needs: installed into a fresh venv outside the
checkout, ``collab images build`` finds its Dockerfiles (package data), builds a test
case's three layers and the runtime image runs a program under the wrapper."""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # only the venv decides
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, **kw)
    assert out.returncode == 0, f"{argv}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def test_wheel_installs_and_builds_images_outside_the_checkout(tmp_path, testcase, base_image, docker_client):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(ROOT)])
    wheel = next(dist.glob("pytest_collab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("pytest_collab/containers/dockerfiles/runtime/Dockerfile",
                   "pytest_collab/containers/dockerfiles/base/amd64/Dockerfile",
                   "pytest_collab/containers/dockerfiles/emulated/sshd_config",
                   "pytest_collab/profiles/local.yaml", "pytest_collab/py.typed"):
        assert needed in names, f"{needed} missing from {wheel.name}"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # the wheel's own files, unpacked as an installer would; dependencies from this venv's
    # site-packages as a plain path (its .pth files, among them the editable checkout, are not run)
    zipfile.ZipFile(wheel).extractall(purelib)
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = _run([str(py), "-c", "import pytest_collab, json; print(json.dumps(pytest_collab.__file__))"],
                 cwd=tmp_path).stdout
    # a path test, not a substring one: a checkout at /tmp/fc is not a prefix of /tmp/fc-bt/...
    assert not Path(json.loads(where)).is_relative_to(ROOT), "the checkout, not the wheel, was imported"

    out = _run([str(py), "-m", "pytest_collab", "images", "build", str(testcase), "--arch", "amd64",
                "--base-from", base_image], cwd=tmp_path).stdout
    tag = out.strip().splitlines()[-1].split("image: ", 1)[1].split(" ", 1)[0]
    logs = docker_client.containers.run(tag, ["python3", "main.py"], remove=True).decode()
    assert "hello from the experiment" in logs
