"""Controller side of serving a model on devices: the lab registry, each device's
architecture from its facts, and deploying (ensure, fetch on the device, start, connect).

Shared with ``parallel_inference`` (its conftest loads this file by path), so both
experiments distribute the model the same way.
"""
from __future__ import annotations

import importlib.util
import os
import posixpath
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

TASK = "classify"


def start_registry(lan: Any, given: str | None, root: Path):  # -> (url, RegistryServer | None)
    """The registry devices fetch from: ``given`` (host:port), else Debian's docker-registry
    started on the profile's controller address, which must be an address of this host
    (the emulated lab's bridge gateway; 127.0.0.1 for the local lab)."""
    from pytest_collab.containers.registry import RegistryClient, free_port, serve

    if given:
        client = RegistryClient(given)
        if not client.ping():
            raise RuntimeError(f"registry {client.url} (--collab-registry) does not answer /v2/")
        return client.url, None
    host = lan.controller.address
    try:
        port = free_port(host)
    except OSError as exc:
        raise RuntimeError(f"profile {lan.name!r}: controller address {host} is not an address of "
                           f"this host ({exc}); serve a registry yourself and pass "
                           "--collab-registry HOST:PORT") from exc
    server = serve(root, port, host)
    return server.url, server


@contextmanager
def lab_registry(lan: Any, config: Any, root: Path) -> Iterator[str]:
    """:func:`start_registry` for a session (``--collab-registry`` wins); stopped at its end."""
    from pytest_collab.session import get_session

    url, server = start_registry(lan, get_session(config).settings["registry"], root)
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


def detect_arch(device: Any, profile_path: Any = None) -> str:
    """The device's architecture from its facts (gathered now when the profile has none)."""
    from pytest_collab.lan import facts
    from pytest_collab.transport import get_transport

    known = (device.facts or {}).get("collab_arch")
    if known:
        return str(known)
    transport = get_transport(device, profile_path=profile_path)
    try:
        return str(facts.gather(transport)["collab_arch"])
    finally:
        transport.close()


_EXPORTS: dict[str, tuple[list[Path], float]] = {}


def exporter(cache: Path):
    """A build callable for ``publish_if_missing``: the first miss of a model exports it,
    later misses reuse those files (the export is the same; its time is in the first row)."""
    spec = importlib.util.spec_from_file_location("collab_md_export_model",
                                                  Path(__file__).with_name("export_model.py"))
    assert spec is not None and spec.loader is not None
    export_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_model)

    def build(model: str, folder: Path) -> list[Path]:
        if model not in _EXPORTS:
            t0 = time.perf_counter()
            _EXPORTS[model] = (export_model.export(model, cache / model), time.perf_counter() - t0)
        return _EXPORTS[model][0]
    return build


@dataclass
class Served:
    """A classifier running on a device, and what getting it there took."""

    device: str
    arch: str
    how: str                  # "built" (registry miss) or "pulled" (hit)
    digest: str
    bytes_pulled: int
    ensure_s: float           # registry check (+ export + push on a miss) + fetch on the device
    fetch_s: float            # the device's own download and verification time
    load_s: float
    host: str
    port: int
    started: float            # perf_counter when the deploy began
    timings: dict[str, float] = field(default_factory=dict)

    def client(self):
        from pytest_collab.devicekit.classify import Client

        return Client(self.host, self.port)


def deploy(collab: Any, device: Any, registry: str, model: str, build, arch: str | None = None) -> Served:
    """Ensure ``classify/<model>:<arch>`` in the registry, fetch it on the device, start it."""
    from pytest_collab.containers.artifacts import publish_if_missing

    arch = arch or detect_arch(device, collab.lan.path)
    started = time.perf_counter()
    published = publish_if_missing(registry, TASK, model, arch, progress=lambda line: None,
                                   build=lambda folder: build(model, folder), workdir=Path("."))
    host_port = registry.split("://", 1)[-1]
    # Local devices are this machine: fetch into a temp folder (not the test case's, and not
    # the run folder, which is shared as a bundle).
    local = Path(tempfile.gettempdir()) / f"pytest-collab-{os.getuid()}" / "models" / collab.run_dir.name
    dest = (str(local / device.name) if device.transport == "local"
            else posixpath.join(device.workdir, "models", device.name))
    fetcher = collab.start(device, "fetch_model.py", "--registry", host_port, published.pin,
                           "--dest", dest, name=f"fetch-{device.name}")
    fetcher.wait(timeout=600)
    [got] = fetcher.results()
    ensure_s = time.perf_counter() - started
    pt2 = next(path for name, path in got["files"].items() if name.endswith(".pt2"))
    server = collab.start(device, "classifier.py", "--model", pt2, "--bind", device.address,
                          ready=r"READY port=(\d+) load_s=([\d.]+)", name=f"classifier-{device.name}")
    return Served(device.name, arch, published.how, published.digest, int(got["bytes"]), ensure_s,
                  float(got["fetch_s"]), float(server.match[2]), device.address, int(server.match[1]), started,
                  {"build_s": published.build_s, "push_s": published.push_s})

