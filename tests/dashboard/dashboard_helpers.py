"""Helpers of the dashboard tests: a tiny project, runs of it, images pushed over HTTP."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"

TINY_TEST = '''
import pytest

@pytest.mark.devices(rpi=1)
@pytest.mark.parametrize("n", [1, 2])
def test_tiny(collab, n):
    prog = collab.start("rpi", "prog.py", str(n))
    prog.wait(timeout=60)
    for row in prog.results():
        collab.record(**row)
'''
TINY_PROG = '''
import json, sys
n = int(sys.argv[1])
print("COLLAB_RESULT " + json.dumps({"accuracy": 0.9 - 0.01 * n, "bytes_sent": 1000 * n}), flush=True)
'''
BUSY_TEST = '''
import pytest

@pytest.mark.devices(server=1, rpi=1)
def test_busy(collab):
    a = collab.start("server", "busy.py", "40")
    b = collab.start("rpi", "busy.py", "40")
    b.wait(timeout=120)
    a.wait(timeout=120)
'''
# CPU in bursts and memory growing by 0.4 MB a step: numbers that change every sample
BUSY_PROG = '''
import sys, time
end, hog, i = time.time() + float(sys.argv[1]), [], 0
while time.time() < end:
    t = time.time() + 0.15
    while time.time() < t:
        pass
    hog.append(b"\x01" * 400_000)  # written, so resident (a zeroed bytearray is not)
    i += 1
    print(f"step {i} holding {len(hog) * 0.4:.1f} MB", flush=True)
    time.sleep(0.1)
'''


def make_project(root: Path) -> Path:
    """A project with its own copy of the local lab (``dashlab``: its own lease folder, so
    other runs on this machine never make these tests wait) and testcases/tiny."""
    case = root / "testcases" / "tiny"
    case.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    profiles = root / "network_profiles"
    profiles.mkdir()
    local = (ROOT / "pytest_collab" / "profiles" / "local.yaml").read_text()
    (profiles / "dashlab.yaml").write_text(local.replace("name: local", "name: dashlab"))
    for name, text in {"test_tiny.py": TINY_TEST, "prog.py": TINY_PROG, "test_busy.py": BUSY_TEST,
                       "busy.py": BUSY_PROG}.items():
        (case / name).write_text(textwrap.dedent(text))
    return root


def pytest_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--lan=dashlab",
            f"--collab-out={out}", *args]


def run_finished(project: Path, out: Path) -> Path:
    """A finished run of test_tiny with its report; returns the run folder."""
    done = subprocess.run(pytest_cmd(out, "testcases/tiny/test_tiny.py", "--collab-report=html"),
                          cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return (out / "latest").resolve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the dashboard exited with {proc.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the dashboard did not listen on {port} within {timeout}s")


# ------------------------------------------------------------------ registry over HTTP
def _put_blob(url: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"{url}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(req) as resp:
        location = resp.headers["Location"]
    url_put = location if location.startswith("http") else url + location
    sep = "&" if "?" in url_put else "?"
    req = urllib.request.Request(f"{url_put}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).close()
    return digest


def push_image(url: str, repo: str, tag: str, arch: str = "amd64") -> tuple[str, int]:
    """Push a real (tiny, one-file) Docker v2 image; returns (manifest digest, size)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = f"model for {repo}:{tag}\n".encode()
        info = tarfile.TarInfo("model.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": _put_blob(url, repo, config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "digest": _put_blob(url, repo, layer), "size": len(layer)}]}
    body = json.dumps(manifest).encode()
    req = urllib.request.Request(f"{url}/v2/{repo}/manifests/{tag}", data=body, method="PUT",
                                 headers={"Content-Type": manifest["mediaType"]})
    with urllib.request.urlopen(req) as resp:
        return resp.headers["Docker-Content-Digest"], len(config) + len(layer)


def push_model_artifact(url: str, repo: str, tag: str) -> str:
    """An OCI artifact (a model file, not an image): it must show with its own type."""
    weights = b"\x00" * 1234
    empty = b"{}"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.collab.model.v1",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": _put_blob(url, repo, empty), "size": len(empty)},
                "layers": [{"mediaType": "application/octet-stream", "digest": _put_blob(url, repo, weights),
                            "size": len(weights)}]}
    req = urllib.request.Request(f"{url}/v2/{repo}/manifests/{tag}", data=json.dumps(manifest).encode(),
                                 method="PUT", headers={"Content-Type": manifest["mediaType"]})
    with urllib.request.urlopen(req) as resp:
        return resp.headers["Docker-Content-Digest"]
