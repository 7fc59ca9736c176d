"""Fetch a model artifact from the lab registry over plain HTTP (devices without Docker).

Stdlib only: a device needs Python, not Docker nor ``oras``. The Registry API v2 is read
directly: the OCI manifest of ``<task>/<model>:<arch>`` names the layers (one file each,
titled by ``org.opencontainers.image.title``), every blob is streamed to disk while its
sha256 is computed, and a blob whose digest differs from the manifest's (or a model file
whose digest differs from the ``dev.collab.digest`` annotation) is deleted and refused:
a device never loads bytes the registry did not promise.

On a device: ``python -m collab_devicekit.fetch --registry HOST:PORT REF --dest DIR``
prints one ``COLLAB_RESULT {json}`` line (files, bytes, seconds, digests).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from .emit import emit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TITLE = "org.opencontainers.image.title"
DIGEST_KEY = "dev.collab.digest"
CHUNK = 1 << 16


class FetchError(Exception):
    """The registry is unreachable, lacks the reference, or sent other bytes than promised."""


class DigestMismatch(FetchError):
    """A blob's sha256 is not the digest the manifest (or its annotation) names."""


def split_ref(ref: str) -> tuple[str, str]:
    """``task/model:arch`` or ``task/model@sha256:...`` -> (repository, tag or digest)."""
    if "@" in ref:
        repo, _, reference = ref.partition("@")
        return repo, reference
    repo, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, "latest"
    return repo, tag


def _base(registry: str) -> str:
    return (registry if "://" in registry else f"http://{registry}").rstrip("/")


def _open(url: str, timeout: float, accept: str | None = None) -> Any:
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"GET {url}: HTTP {exc.code} (is the reference pushed? "
                         "`collab registry ls` lists what the registry has)") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"registry {url.split('/v2/')[0]} unreachable ({exc})") from exc


def manifest(registry: str, ref: str, timeout: float = 30) -> tuple[str, dict[str, Any]]:
    """(digest, manifest) of an artifact; a manifest fetched by digest is verified too."""
    repo, reference = split_ref(ref)
    with _open(f"{_base(registry)}/v2/{repo}/manifests/{reference}", timeout, OCI_MANIFEST) as resp:
        body = resp.read()
        digest = resp.headers.get("Docker-Content-Digest") or ""
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    for promised in (reference if reference.startswith("sha256:") else None, digest or None):
        if promised and promised != actual:
            raise DigestMismatch(f"manifest of {ref} from {registry} has digest {actual}, "
                                 f"expected {promised}: refused")
    return actual, json.loads(body)


def blob(registry: str, repo: str, digest: str, path: str, timeout: float = 60) -> int:
    """Stream one blob to ``path`` verifying its sha256; returns its size. Refused on mismatch."""
    algo, _, expected = digest.partition(":")
    if algo != "sha256" or not expected:
        raise FetchError(f"{repo}: unsupported digest {digest!r} (sha256 only)")
    sha, size, part = hashlib.sha256(), 0, path + ".part"
    with _open(f"{_base(registry)}/v2/{repo}/blobs/{digest}", timeout) as resp, open(part, "wb") as out:
        while chunk := resp.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if sha.hexdigest() != expected:
        os.unlink(part)
        raise DigestMismatch(f"{repo}: blob {digest} from {registry} has sha256:{sha.hexdigest()}: refused")
    os.replace(part, path)
    return size


def fetch(registry: str, ref: str, dest: str, timeout: float = 60) -> dict[str, Any]:
    """Every layer of the artifact ``ref`` into ``dest``, verified; a summary of what came."""
    start = time.perf_counter()
    repo, _ = split_ref(ref)
    digest, doc = manifest(registry, ref, timeout)
    annotations = doc.get("annotations") or {}
    os.makedirs(dest, exist_ok=True)
    files: dict[str, str] = {}
    total = 0
    for i, layer in enumerate(doc.get("layers") or []):
        name = os.path.basename((layer.get("annotations") or {}).get(TITLE) or f"layer{i}")
        path = os.path.join(dest, name)
        total += blob(registry, repo, layer["digest"], path, timeout)
        files[name] = path
    model_digest = annotations.get(DIGEST_KEY)
    if model_digest and model_digest not in {layer["digest"] for layer in doc.get("layers") or []}:
        raise DigestMismatch(f"{ref}: annotation {DIGEST_KEY}={model_digest} matches no layer: refused")
    return {"ref": ref, "manifest_digest": digest, "model_digest": model_digest, "files": files,
            "bytes": total, "fetch_s": time.perf_counter() - start, "annotations": annotations}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="collab_devicekit.fetch", description=__doc__.splitlines()[0])
    p.add_argument("ref", help="<task>/<model>:<arch> or <task>/<model>@sha256:...")
    p.add_argument("--registry", required=True, help="host:port of the lab registry")
    p.add_argument("--dest", required=True, help="folder to write the artifact's files to")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args(argv)
    try:
        got = fetch(args.registry, args.ref, args.dest, args.timeout)
    except FetchError as exc:
        print(f"fetch: {exc}", flush=True)
        return 2
    emit(got)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
