"""``collab registry serve|ls|tags|exists|rm|ensure``: the lab's image and model registry."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from pytest_collab.containers.registry import DEFAULT_PORT
from pytest_collab.testcase import testcase_path

DEFAULT_REGISTRY = f"127.0.0.1:{DEFAULT_PORT}"
#: the test case folder `collab registry ensure` builds from when --build is absent
DEFAULT_BUILD = testcase_path("model_distribution")


def _client(args: argparse.Namespace, ref: str | None = None):  # -> RegistryClient
    from pytest_collab.containers.registry import Ref, RegistryClient

    host = Ref.parse(ref).registry if ref else None
    return RegistryClient(host or args.registry)


def _serve(args: argparse.Namespace) -> int:
    from pytest_collab.containers.registry import serve

    server = serve(Path(args.root).expanduser(), args.port, args.host)
    print(f"registry at {server.url} (storage {server.root}, log {server.log}); Ctrl-C stops it",
          flush=True)
    try:
        while server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _ls(args: argparse.Namespace) -> int:
    """One line per tag: kind (image/model/index), repository, tag, size, digest, annotations."""
    from pytest_collab.containers.artifacts import KEYS, is_model, listing

    for row in listing(_client(args).url):
        kind = "model" if is_model(row) else row.get("kind", "?")
        notes = row.get("annotations") or {}
        extra = " ".join(f"{k}={notes[v]}" for k, v in KEYS.items() if k != "digest" and v in notes)
        print(f"{kind:<6} {row['repository']:<32} {row['tag']:<8} {row.get('size', 0):>12} "
              f"{row.get('digest', row.get('error', ''))}{'  ' + extra if extra else ''}")
    return 0


def _which(args: argparse.Namespace) -> int:
    from pytest_collab.containers.artifacts import which

    print(which(_client(args).url, args.task, args.arch, args.model))
    return 0


def _tags(args: argparse.Namespace) -> int:
    from pytest_collab.containers.registry import Ref

    for tag in _client(args, args.repo).tags(Ref.parse(args.repo).repository):
        print(tag)
    return 0


def _exists(args: argparse.Namespace) -> int:
    digest = _client(args, args.ref).digest(args.ref)
    print(digest or "absent")
    return 0 if digest else 1


def _rm(args: argparse.Namespace) -> int:
    print(f"deleted {args.ref} ({_client(args, args.ref).delete(args.ref)})")
    return 0


def _ensure(args: argparse.Namespace) -> int:
    from pytest_collab.containers.registry import Ref, ensure

    if ":" not in args.ref.rpartition("/")[2] and "@" not in args.ref:
        return _ensure_model(args)
    registry = None if Ref.parse(args.ref).registry else args.registry
    done = ensure(args.ref, build=Path(args.build) if args.build else None, registry=registry,
                  arch=args.arch, base_from=args.base_from)
    print(f"{done.ref} {done.how} ({done.image_id})")
    return 0


def _ensure_model(args: argparse.Namespace) -> int:
    """``<task>/<model>`` without a tag is a model artifact for ``--arch``: exported by the
    ``export(model, folder)`` function of ``<build>/export_model.py`` on a miss."""
    import importlib.util

    from pytest_collab.containers.artifacts import ensure_artifact
    from pytest_collab.containers.platforms import host_arch
    from pytest_collab.containers.registry import Ref

    parsed = Ref.parse(args.ref)
    task, _, model = parsed.repository.partition("/")
    if not model:
        raise SystemExit(f"{args.ref}: expected <task>/<model> (e.g. classify/mobilenet_v3_small)")
    build_dir = Path(args.build or DEFAULT_BUILD)
    exporter = build_dir / "export_model.py"

    def build(folder: Path) -> list[Path]:
        if not exporter.is_file():
            raise SystemExit(f"{args.ref} is not in the registry and {exporter} does not exist to "
                             "export it; pass --build TESTCASE_DIR (a folder with export_model.py)")
        spec = importlib.util.spec_from_file_location("collab_export_model", exporter)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return list(module.export(model, folder))

    dest = Path(args.dest or f"~/.cache/pytest-collab/models/{task}/{model}").expanduser()
    done = ensure_artifact(_client(args, args.ref).url, task, model, args.arch or host_arch(),
                           build=build, dest=dest)
    files = ", ".join(done.fetched["files"].values())
    print(f"{done.published.ref} {done.published.how} ({done.published.digest}; {done.fetched['bytes']} bytes in "
          f"{done.ensure_s:.2f} s): {files}")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``registry`` and its sub-commands to the ``collab`` parser."""
    reg = subparsers.add_parser("registry", help="the lab's image/model registry (Registry API v2)")
    reg.add_argument("--registry", default=os.environ.get("PYTEST_COLLAB_REGISTRY", DEFAULT_REGISTRY),
                     help="host:port of the registry; env PYTEST_COLLAB_REGISTRY "
                          f"(default: {DEFAULT_REGISTRY})")
    sub = reg.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")

    srv = sub.add_parser("serve", help="run Debian's docker-registry until Ctrl-C")
    srv.add_argument("--root", default="~/.cache/pytest-collab/registry",
                     help="storage folder (default: ~/.cache/pytest-collab/registry)")
    srv.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to bind; the lab's LAN address to serve devices (default: 127.0.0.1)")
    srv.set_defaults(func=_serve)

    sub.add_parser("ls", help="list every tag: images and models, sizes, digests").set_defaults(func=_ls)
    wh = sub.add_parser("which", help="the reference that serves TASK on --arch (models and images)")
    wh.add_argument("task", metavar="TASK")
    wh.add_argument("--arch", required=True, help="device architecture (amd64, arm64, jetson)")
    wh.add_argument("--model", default=None, help="only this model")
    wh.set_defaults(func=_which)
    tags = sub.add_parser("tags", help="list the tags of a repository")
    tags.add_argument("repo", metavar="REPO")
    tags.set_defaults(func=_tags)
    exists = sub.add_parser("exists", help="print the digest of REF; exit 1 if absent")
    exists.add_argument("ref", metavar="REF")
    exists.set_defaults(func=_exists)
    rm = sub.add_parser("rm", help="delete REF's manifest (by digest)")
    rm.add_argument("ref", metavar="REF")
    rm.set_defaults(func=_rm)
    ens = sub.add_parser("ensure", help="pull REF if the registry has it, else build, push, pull")
    ens.add_argument("ref", metavar="REF", help="image <task>/<model>:<arch>, or model artifact "
                     "<task>/<model> with --arch; optionally host:port/ first")
    ens.add_argument("--build", metavar="TESTCASE_DIR", help="test case folder that builds REF (models: "
                     f"its export_model.py; default {DEFAULT_BUILD})")
    ens.add_argument("--arch", default=None, help="architecture to build for (default: REF's tag; "
                     "models: this machine's)")
    ens.add_argument("--dest", default=None, help="models: folder to fetch into "
                     "(default ~/.cache/pytest-collab/models/<task>/<model>)")
    ens.add_argument("--base-from", default="auto", metavar="IMAGE", help="base layer's FROM (default: auto)")
    ens.set_defaults(func=_ensure)
