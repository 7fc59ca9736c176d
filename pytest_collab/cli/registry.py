"""``collab registry serve|ls|tags|exists|rm|ensure``: the lab's image and model registry."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from pytest_collab.containers.registry import DEFAULT_PORT

DEFAULT_REGISTRY = f"127.0.0.1:{DEFAULT_PORT}"


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
    for repo in _client(args).catalog():
        print(repo)
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

    registry = None if Ref.parse(args.ref).registry else args.registry
    done = ensure(args.ref, build=Path(args.build) if args.build else None, registry=registry,
                  arch=args.arch, base_from=args.base_from)
    print(f"{done.ref} {done.how} ({done.image_id})")
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

    sub.add_parser("ls", help="list repositories").set_defaults(func=_ls)
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
    ens.add_argument("ref", metavar="REF", help="<task>/<model>:<arch>, optionally host:port/ first")
    ens.add_argument("--build", metavar="TESTCASE_DIR", help="test case folder that builds REF")
    ens.add_argument("--arch", default=None, help="architecture to build for (default: REF's tag)")
    ens.add_argument("--base-from", default="auto", metavar="IMAGE", help="base layer's FROM (default: auto)")
    ens.set_defaults(func=_ensure)
