"""``collab images build|bootstrap``: layered experiment images, with progress."""
from __future__ import annotations

import argparse
from pathlib import Path

from pytest_collab.containers.images import ARCHES


def _build(args: argparse.Namespace) -> int:
    from pytest_collab.containers.engines import local_client
    from pytest_collab.containers.images import build_testcase
    from pytest_collab.containers.registry import Ref, push

    client = local_client()
    results = build_testcase(Path(args.testcase_dir), args.arch, client=client,
                             base_from=args.base_from,
                             torch_wheel=Path(args.torch_wheel) if args.torch_wheel else None,
                             wheels_dir=Path(args.wheels) if args.wheels else None)
    rebuilt = [r.layer for r in results if r.built]
    print(f"image: {results[-1].tag} (rebuilt: {', '.join(rebuilt) or 'nothing'})")
    if args.push:
        host = args.push.split("://", 1)[-1].rstrip("/")
        ref = Ref.parse(results[-1].tag)
        push(client, results[-1].tag, f"{host}/{ref.repository}:{args.arch}")
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from pytest_collab.containers.bootstrap import bootstrap

    print(bootstrap(args.arch, refresh=args.refresh))
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``images`` and its sub-commands to the ``collab`` parser."""
    images = subparsers.add_parser("images", help="build layered experiment images (base, deps, runtime)")
    sub = images.add_subparsers(dest="images_command", required=True, metavar="COMMAND")

    build = sub.add_parser("build", help="build base, deps and runtime layers of a test case; "
                                         "unchanged layers are cache hits")
    build.add_argument("testcase_dir", metavar="TESTCASE_DIR", help="folder with the experiment's code "
                                                                     "and optional requirements.txt, wheels/")
    build.add_argument("--arch", choices=ARCHES, default="amd64", help="device architecture (default: amd64)")
    build.add_argument("--push", metavar="REGISTRY", help="also push the runtime image to "
                                                          "REGISTRY/collab/<testcase>:<arch>")
    build.add_argument("--base-from", default="auto", metavar="IMAGE",
                       help="base layer's FROM; 'auto' uses the Dockerfile's image when the engine "
                            "has it, else a debootstrap one (default: auto)")
    build.add_argument("--torch-wheel", metavar="WHL", help="install this torch wheel in the base layer")
    build.add_argument("--wheels", metavar="DIR", help="wheels for requirements.txt, installed "
                                                       "offline (default: TESTCASE_DIR/wheels)")
    build.set_defaults(func=_build)

    boot = sub.add_parser("bootstrap", help="make a base image from a debootstrap root fs "
                                            "(no registry needed)")
    boot.add_argument("--arch", choices=ARCHES[:2], default="amd64", help="architecture (default: amd64)")
    boot.add_argument("--refresh", action="store_true", help="debootstrap again even if cached")
    boot.set_defaults(func=_bootstrap)
