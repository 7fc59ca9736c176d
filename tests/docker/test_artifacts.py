"""issue 18: model artifacts as OCI content of Debian's docker-registry (no docker engine needed).

Push, list, fetch by digest with the device kit's stdlib fetcher, the annotation look-up,
``ensure`` (a miss builds and pushes, a hit only fetches), and the refusals: a tampered
blob, an architecture without a base image, an unreachable registry.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_collab.containers.artifacts import (ARTIFACT_TYPE, ArtifactError, KEYS, ensure_artifact, listing,
                                                push_artifact, serving, which)
from pytest_collab.containers.registry import RegistryClient, RegistryError, free_port
from pytest_collab.devicekit.fetch import DigestMismatch, FetchError, fetch

ROOT = Path(__file__).resolve().parents[2]


def model_files(folder: Path, payload: bytes = b"pt2-bytes" * 1000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.pt2").write_bytes(payload)
    (folder / "m.json").write_text(json.dumps({"inputs": [{"shape": [1, 3, 8, 8]}], "outputs": []}))
    return [folder / "m.pt2", folder / "m.json"]


def test_push_list_fetch_by_digest_and_look_up(registry, tmp_path: Path) -> None:
    client = registry.client()
    files = model_files(tmp_path / "src")
    pushed = push_artifact(client, "classify", "md-net", "arm64", files)
    push_artifact(client, "classify", "md-net", "amd64", model_files(tmp_path / "src2", b"other"))

    digest, media, manifest = client.manifest("classify/md-net:arm64")
    assert digest == pushed.digest and media == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    notes = manifest["annotations"]
    assert (notes[KEYS["task"]], notes[KEYS["model"]], notes[KEYS["arch"]]) == ("classify", "md-net", "arm64")
    assert notes[KEYS["digest"]] == "sha256:" + hashlib.sha256(files[0].read_bytes()).hexdigest()

    rows = {r["ref"]: r for r in listing(registry.url)}
    assert rows["classify/md-net:arm64"]["kind"] == "artifact"          # as the dashboard's Registry page shows it
    assert rows["classify/md-net:arm64"]["annotations"][KEYS["model"]] == "md-net"
    assert rows["classify/md-net:arm64"]["size"] == 2 + sum(f.stat().st_size for f in files)
    assert [r["ref"] for r in serving(list(rows.values()), "classify", "amd64")] == ["classify/md-net:amd64"]
    assert which(registry.url, "classify", "arm64", "md-net") == "classify/md-net:arm64"
    with pytest.raises(ArtifactError, match="riscv64.*classify/md-net:amd64"):
        which(registry.url, "classify", "riscv64")

    got = fetch(registry.host, f"classify/md-net@{pushed.digest}", str(tmp_path / "dev"))
    assert got["manifest_digest"] == pushed.digest and got["bytes"] == pushed.bytes
    assert Path(got["files"]["m.pt2"]).read_bytes() == files[0].read_bytes()
    assert Path(got["files"]["m.json"]).read_text() == files[1].read_text()


def test_ensure_misses_then_hits(registry, tmp_path: Path) -> None:
    built: list[Path] = []

    def build(folder: Path) -> list[Path]:
        built.append(folder)
        return model_files(folder)

    miss = ensure_artifact(registry.url, "classify", "md-ensure", "jetson", build=build, dest=tmp_path / "a",
                           progress=lambda line: None)
    hit = ensure_artifact(registry.url, "classify", "md-ensure", "jetson", build=build, dest=tmp_path / "b",
                          progress=lambda line: None)
    assert (miss.published.how, hit.published.how) == ("built", "pulled") and len(built) == 1
    assert miss.published.digest == hit.published.digest
    assert hit.fetched["bytes"] == miss.published.bytes_pushed > 0
    assert Path(hit.fetched["files"]["m.pt2"]).read_bytes() == (built[0] / "m.pt2").read_bytes()


def test_an_architecture_without_a_base_image_is_named(registry, tmp_path: Path) -> None:
    push_artifact(registry.client(), "classify", "md-base", "amd64", model_files(tmp_path / "x"))
    with pytest.raises(ArtifactError) as err:
        ensure_artifact(registry.url, "classify", "md-base", "riscv64", build=model_files, dest=tmp_path,
                        progress=lambda line: None)
    assert "'riscv64'" in str(err.value) and "amd64, arm64, jetson" in str(err.value)
    assert "classify/md-base:amd64" in str(err.value)


def test_a_tampered_blob_is_refused(registry, tmp_path: Path) -> None:
    files = model_files(tmp_path / "src", b"genuine weights" * 100)
    pushed = push_artifact(registry.client(), "classify", "md-tamper", "amd64", files)
    # Rewrite the stored blob behind the registry's back (a corrupted disk, a swapped file).
    hexdigest = pushed.model_digest.split(":")[1]
    stored = registry.root / "data/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    stored.write_bytes(b"evil weights!!!" * 100)
    with pytest.raises(DigestMismatch, match="refused"):
        fetch(registry.host, "classify/md-tamper:amd64", str(tmp_path / "dev"))
    assert not (tmp_path / "dev" / "m.pt2").exists() and not (tmp_path / "dev" / "m.pt2.part").exists()


def test_an_unreachable_registry_names_its_address(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(FetchError, match=address):
        fetch(address, "classify/x:amd64", str(tmp_path))
    with pytest.raises(RegistryError, match=address):
        ensure_artifact(address, "classify", "x", "amd64", build=model_files, dest=tmp_path,
                        progress=lambda line: None)
    assert not RegistryClient(address).ping()


def _collab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest_collab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_ensure_exports_on_a_miss_and_ls_shows_models(registry, tmp_path: Path) -> None:
    builder = tmp_path / "tc"
    builder.mkdir()
    (builder / "export_model.py").write_text(
        "from pathlib import Path\n"
        "def export(model, folder):\n"
        "    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)\n"
        "    (folder / f'{model}.pt2').write_bytes(model.encode() * 50)\n"
        "    (folder / f'{model}.json').write_text('{\"inputs\": [], \"outputs\": []}')\n"
        "    return [folder / f'{model}.pt2', folder / f'{model}.json']\n")
    args = ["registry", "--registry", registry.host, "ensure", "classify/md-cli", "--arch", "arm64",
            "--build", str(builder), "--dest", str(tmp_path / "got")]
    first, second = _collab(*args, cwd=tmp_path), _collab(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "classify/md-cli:arm64 built" in first.stdout and "classify/md-cli:arm64 pulled" in second.stdout
    assert (tmp_path / "got" / "arm64" / "md-cli.pt2").read_bytes() == b"md-cli" * 50
    listed = _collab("registry", "--registry", registry.host, "ls", cwd=tmp_path).stdout
    line = next(x.split() for x in listed.splitlines() if "classify/md-cli" in x.split())
    assert line[:3] == ["model", "classify/md-cli", "arm64"]
    assert "task=classify" in line and "arch=arm64" in line
    found = _collab("registry", "--registry", registry.host, "which", "classify", "--arch", "arm64",
                    "--model", "md-cli", cwd=tmp_path)
    assert found.stdout.strip() == "classify/md-cli:arm64"
