"""The registry client, server and ensure against Debian's real docker-registry."""
from __future__ import annotations

import argparse
import json
import urllib.request

import pytest

from pytest_collab.containers.registry import MANIFEST_TYPES, Ref, RegistryClient, RegistryError, ensure, pull, push


@pytest.mark.parametrize("text, want", [
    ("split/resnet18-head:arm64", Ref(None, "split/resnet18-head", "arm64")),
    ("127.0.0.1:5000/split/head:amd64", Ref("127.0.0.1:5000", "split/head", "amd64")),
    ("localhost/a/b", Ref("localhost", "a/b", "latest")),
    ("a/b@sha256:abc", Ref(None, "a/b", "sha256:abc")),
])
def test_ref_parse(text, want):
    assert Ref.parse(text) == want


def test_config_enables_delete_and_binds_loopback(registry):
    text = registry.config.read_text()
    assert "delete:\n    enabled: true" in text and f"addr: 127.0.0.1:{registry.url.rsplit(':', 1)[1]}" in text


def test_push_ls_tags_exists_pull_delete(registry, testcase, base_image, docker_client, session_token):
    from pytest_collab.containers.images import build_testcase

    image = build_testcase(testcase, client=docker_client, base_from=base_image, progress=lambda l: None)[-1].tag
    client = registry.client()
    repo = f"split{session_token}/resnet18-head"
    ref = f"{registry.host}/{repo}:amd64"
    assert not client.exists(f"{repo}:amd64")
    push(docker_client, image, ref, progress=lambda l: None)
    push(docker_client, image, f"{registry.host}/{repo}:arm64", progress=lambda l: None)
    assert repo in client.catalog()
    assert client.tags(repo) == ["amd64", "arm64"]
    digest, media, manifest = client.manifest(f"{repo}:amd64")
    assert digest.startswith("sha256:") and media in MANIFEST_TYPES and manifest["layers"]
    assert client.digest(f"{repo}:amd64") == digest
    docker_client.images.remove(ref)
    assert pull(docker_client, ref, progress=lambda l: None) == docker_client.images.get(image).id
    assert client.delete(f"{repo}:amd64") == digest
    # both tags point to the same manifest: deleting by digest removes both
    assert not client.exists(f"{repo}:amd64") and client.tags(repo) == []
    with pytest.raises(RegistryError, match="does not exist"):
        client.delete(f"{repo}:amd64")


def test_manifest_accepts_oci(registry):
    """An OCI manifest pushed by another tool is read back with its own media type."""
    client = registry.client()
    repo = "oci/artifact"
    config = b"{}"
    import hashlib

    def put_blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        req = urllib.request.Request(f"{registry.url}/v2/{repo}/blobs/uploads/", method="POST")
        with urllib.request.urlopen(req) as resp:
            location = resp.headers["Location"]
        sep = "&" if "?" in location else "?"
        url = location if location.startswith("http") else registry.url + location
        req = urllib.request.Request(f"{url}{sep}digest={digest}", data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req).close()
        return digest

    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPES[2],
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": put_blob(config), "size": len(config)},
                "layers": []}
    req = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/v1", method="PUT",
                                 data=json.dumps(manifest).encode(),
                                 headers={"Content-Type": MANIFEST_TYPES[2]})
    urllib.request.urlopen(req).close()
    _, media, body = client.manifest(f"{repo}:v1")
    assert media == MANIFEST_TYPES[2] and body["config"]["size"] == 2


def test_ensure_builds_then_pulls(registry, testcase, base_image, docker_client, session_token):
    ref = f"split{session_token}/ensured:amd64"
    log: list[str] = []
    first = ensure(ref, build=testcase, registry=registry.host, client=docker_client,
                   base_from=base_image, progress=log.append)
    assert first.how == "built" and any("missing: building" in l for l in log)
    assert registry.client().exists(ref)
    docker_client.images.remove(first.ref)
    log.clear()
    second = ensure(ref, build=testcase, registry=registry.host, client=docker_client, progress=log.append)
    assert second.how == "pulled" and second.image_id == first.image_id
    assert not any("build" in l for l in log)


def test_ensure_without_build_says_what_to_do(registry, docker_client):
    with pytest.raises(RegistryError, match="pass --build TESTCASE_DIR"):
        ensure("none/such:amd64", registry=registry.host, client=docker_client, progress=lambda l: None)


def test_unreachable_registry_names_url():
    with pytest.raises(RegistryError, match=r"127\.0\.0\.1:9 unreachable .*collab registry serve"):
        RegistryClient("127.0.0.1:9", timeout=2).catalog()


def _cli(*argv: str) -> int:
    from pytest_collab.cli import registry as cli_registry

    parser = argparse.ArgumentParser(prog="collab")
    cli_registry.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_ls_tags_exists_rm(registry, testcase, base_image, docker_client, session_token, capsys):
    from pytest_collab.containers.images import build_testcase

    image = build_testcase(testcase, client=docker_client, base_from=base_image, progress=lambda l: None)[-1].tag
    repo = f"cli{session_token}/model"
    push(docker_client, image, f"{registry.host}/{repo}:amd64", progress=lambda l: None)
    capsys.readouterr()
    assert _cli("registry", "--registry", registry.host, "ls") == 0
    assert repo in capsys.readouterr().out.split()
    assert _cli("registry", "--registry", registry.host, "tags", repo) == 0
    assert capsys.readouterr().out.split() == ["amd64"]
    assert _cli("registry", "exists", f"{registry.host}/{repo}:amd64") == 0
    assert capsys.readouterr().out.startswith("sha256:")
    assert _cli("registry", "--registry", registry.host, "rm", f"{repo}:amd64") == 0
    assert _cli("registry", "--registry", registry.host, "exists", f"{repo}:amd64") == 1
