"""The Registry page's data: repositories, tags, digests, sizes, and look-up by arch and task.

Everything comes from :class:`pytest_collab.containers.registry.RegistryClient`. Rows
are built from what each manifest says (its media type, ``artifactType``, config media
type, layer sizes), not from a fixed list of kinds, so OCI model artifacts pushed later
appear with their own type and size next to images. Names follow the registry's
convention ``<task>/<model>:<arch>``; a repository without a ``/`` has no task.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_collab.containers.registry import Ref, RegistryClient, RegistryError

LIST_TIMEOUT = 5.0
WORKERS = 8
IMAGE_CONFIGS = ("application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json")


def split_name(repository: str) -> tuple[str | None, str]:
    """``split/resnet18-head`` -> (``split``, ``resnet18-head``)."""
    task, slash, model = repository.partition("/")
    return (task, model) if slash else (None, repository)


def describe_manifest(media_type: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Kind, size and platforms of one manifest, read from the manifest itself."""
    config: dict[str, Any] = manifest["config"] if isinstance(manifest.get("config"), dict) else {}
    layers: list[Any] = manifest["layers"] if isinstance(manifest.get("layers"), list) else []
    children: list[Any] = manifest["manifests"] if isinstance(manifest.get("manifests"), list) else []
    config_type = config.get("mediaType")
    artifact = manifest.get("artifactType") or (config_type if config_type not in IMAGE_CONFIGS else None)
    if children:
        kind = "index"
        size = sum(int(m.get("size") or 0) for m in children)
        platforms = sorted({f"{m['platform'].get('os', '?')}/{m['platform'].get('architecture', '?')}"
                            for m in children if isinstance(m.get("platform"), dict)})
    else:
        kind = "artifact" if artifact else "image"
        size = int(config.get("size") or 0) + sum(int(layer.get("size") or 0) for layer in layers)
        platforms = []
    return {"kind": kind, "artifact_type": artifact, "media_type": media_type, "size": size,
            "layers": len(layers), "platforms": platforms,
            "annotations": manifest.get("annotations") or {}}


def _tag_row(client: RegistryClient, repository: str, tag: str) -> dict[str, Any]:
    row: dict[str, Any] = {"repository": repository, "tag": tag, "ref": f"{repository}:{tag}"}
    task, model = split_name(repository)
    row.update(task=task, model=model, arch=tag)
    try:
        digest, media, manifest = client.manifest(Ref(None, repository, tag))
    except RegistryError as exc:
        return {**row, "error": str(exc)}
    return {**row, "digest": digest, **describe_manifest(media, manifest)}


def listing(url: str) -> dict[str, Any]:
    """The whole registry as rows, or ``reachable: False`` with the address and the reason."""
    client = RegistryClient(url, timeout=LIST_TIMEOUT)
    out: dict[str, Any] = {"url": client.url, "reachable": False, "rows": [], "repositories": []}
    try:
        repositories = client.catalog()
    except RegistryError as exc:
        return {**out, "error": str(exc)}
    out.update(reachable=True, repositories=repositories)
    with ThreadPoolExecutor(WORKERS) as pool:
        tags = list(pool.map(client.tags, repositories))
        pairs = [(repo, tag) for repo, repo_tags in zip(repositories, tags) for tag in repo_tags]
        out["rows"] = list(pool.map(lambda pair: _tag_row(client, *pair), pairs))
    return out


def lookup(rows: list[dict[str, Any]], task: str | None = None, arch: str | None = None,
           model: str | None = None) -> list[dict[str, Any]]:
    """Rows matching the task, architecture and model given (empty filters match all)."""
    def fits(row: dict[str, Any]) -> bool:
        return ((not task or row.get("task") == task) and (not arch or row.get("arch") == arch)
                and (not model or row.get("model") == model))
    return [row for row in rows if fits(row)]


def advice(url: str, task: str, model: str, arch: str, found: bool) -> str:
    """The source documents' flow, as the next step for this artifact."""
    ref = f"{task}/{model}:{arch}"
    if found:
        return f"{ref} exists in {url}: ensure pulls it"
    return f"{ref} is not in {url}: ensure builds it (give a test case folder), pushes and pulls it"
