"""Models as registry content: OCI artifacts next to the images, per task, model and arch.

A model (an exported ``.pt2`` and its JSON sidecar) is pushed as an OCI image manifest
with ``artifactType`` :data:`ARTIFACT_TYPE`, the empty config, one layer per file and
annotations naming its task, model, architecture and the model file's digest. It lives
under the same name as an image would (``<task>/<model>:<arch>``), so one look-up by task
and architecture answers which reference serves a device. Devices fetch it with the
stdlib-only :mod:`pytest_collab.devicekit.fetch` (no Docker needed); the controller uses
the same fetcher, so what is verified is verified the same way everywhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pytest_collab.containers.platforms import ARCHES
from pytest_collab.containers.registry import Ref, RegistryClient, RegistryError, artifact_name

ARTIFACT_TYPE = "application/vnd.collab.model.v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = {"mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                "size": 2}
LAYER_TYPES = {".pt2": "application/vnd.collab.model.pt2", ".json": "application/vnd.collab.model.sidecar+json"}
KEYS = {"task": "dev.collab.task", "model": "dev.collab.model", "arch": "dev.collab.arch",
        "digest": "dev.collab.digest"}
TITLE = "org.opencontainers.image.title"

Progress = Callable[[str], None]
#: Builds the model's files into the folder given; returns them, the model file first.
Build = Callable[[Path], list[Path]]


class ArtifactError(RegistryError):
    """A model artifact can not be pushed, found, built or trusted; the message says why."""


@dataclass
class Pushed:
    ref: str
    digest: str            # the manifest's
    model_digest: str      # the model file's (first layer), also an annotation
    bytes: int


def push_artifact(client: RegistryClient, task: str, model: str, arch: str, files: list[Path]) -> Pushed:
    """Push ``files`` (model file first) as the OCI artifact ``<task>/<model>:<arch>``."""
    if not files:
        raise ArtifactError(f"{artifact_name(task, model, arch)}: no files to push")
    ref = Ref.parse(artifact_name(task, model, arch))
    client.put_blob(ref.repository, b"{}")
    layers: list[dict[str, Any]] = []
    for path in files:
        data = Path(path).read_bytes()
        layers.append({"mediaType": LAYER_TYPES.get(Path(path).suffix, "application/octet-stream"),
                       "digest": client.put_blob(ref.repository, data), "size": len(data),
                       "annotations": {TITLE: Path(path).name}})
    annotations = {KEYS["task"]: task, KEYS["model"]: model, KEYS["arch"]: arch,
                   KEYS["digest"]: layers[0]["digest"],
                   "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
                "config": EMPTY_CONFIG, "layers": layers, "annotations": annotations}
    digest = client.put_manifest(ref, manifest, OCI_MANIFEST)
    return Pushed(f"{ref.repository}:{ref.reference}", digest, str(layers[0]["digest"]),
                  sum(int(layer["size"]) for layer in layers))


def listing(url: str) -> list[dict[str, Any]]:
    """Every tag of the registry as a row (images and models), as the dashboard shows it."""
    from pytest_collab.dashboard.registry_view import listing as rows

    got = rows(url)
    if not got["reachable"]:
        raise RegistryError(got["error"])
    return list(got["rows"])


def is_model(row: dict[str, Any]) -> bool:
    return row.get("artifact_type") == ARTIFACT_TYPE


def serving(rows: list[dict[str, Any]], task: str, arch: str, model: str | None = None) -> list[dict[str, Any]]:
    """Rows that serve a device of ``arch`` for ``task``: models by their annotations,
    images by the ``<task>/<model>:<arch>`` name."""
    def value(row: dict[str, Any], key: str) -> Any:
        return (row.get("annotations") or {}).get(KEYS[key]) if is_model(row) else row.get(key)
    return [row for row in rows if value(row, "task") == task and value(row, "arch") == arch
            and (model is None or value(row, "model") == model)]


def which(url: str, task: str, arch: str, model: str | None = None) -> str:
    """The reference that serves ``arch`` for ``task``; an error naming what exists otherwise."""
    rows = listing(url)
    found = serving(rows, task, arch, model)
    if not found:
        raise ArtifactError(f"{url}: nothing serves task {task!r} on architecture {arch!r}"
                            f"{f' with model {model!r}' if model else ''}; the registry has: "
                            f"{', '.join(r['ref'] for r in rows) or 'nothing'}")
    return str(found[0]["ref"])


@dataclass
class Published:
    """The registry side of ``ensure``: ``"pulled"`` (a hit) or ``"built"`` (a miss, pushed)."""

    ref: str                # <task>/<model>:<arch>
    pin: str                # <task>/<model>@<manifest digest>: what devices fetch
    how: str
    digest: str
    build_s: float = 0.0
    push_s: float = 0.0
    bytes_pushed: int = 0


def publish_if_missing(url: str, task: str, model: str, arch: str, *, build: Build, workdir: Path,
                       progress: Progress = print) -> Published:
    """Exists in the registry -> its digest; else build (export) into ``workdir`` and push.
    An architecture without a base image is refused, naming the ones that exist."""
    client = RegistryClient(url)
    ref = artifact_name(task, model, arch)
    repository = Ref.parse(ref).repository
    digest = client.digest(ref)
    if digest is not None:
        return Published(ref, f"{repository}@{digest}", "pulled", digest)
    if arch not in ARCHES:
        existing = [r["ref"] for r in listing(url) if r.get("task") == task]
        raise ArtifactError(f"no base image for architecture {arch!r} (bases exist for "
                            f"{', '.join(ARCHES)}); {client.url} has for task {task!r}: "
                            f"{', '.join(existing) or 'nothing'}")
    progress(f"[registry] {ref} missing in {client.url}: exporting")
    t0 = time.perf_counter()
    files = build(Path(workdir))
    t1 = time.perf_counter()
    pushed = push_artifact(client, task, model, arch, files)
    progress(f"[registry] pushed {ref} ({pushed.digest})")
    return Published(ref, f"{repository}@{pushed.digest}", "built", pushed.digest, t1 - t0,
                     time.perf_counter() - t1, pushed.bytes)


@dataclass
class Ensured:
    """What ``ensure_artifact`` did and what the fetch brought (files, bytes, digests)."""

    published: Published
    fetched: dict[str, Any] = field(default_factory=dict)
    ensure_s: float = 0.0


def ensure_artifact(url: str, task: str, model: str, arch: str, *, build: Build, dest: Path,
                    progress: Progress = print) -> Ensured:
    """The source document's flow for models: exists? fetch : build (export), push, fetch."""
    from pytest_collab.devicekit.fetch import fetch

    start = time.perf_counter()
    published = publish_if_missing(url, task, model, arch, build=build, workdir=Path(dest) / "build",
                                   progress=progress)
    fetched = fetch(RegistryClient(url).url, published.pin, str(Path(dest) / arch))
    return Ensured(published, fetched, time.perf_counter() - start)
