"""``collab lab up|down|status PROFILE``: the emulated lab."""
from __future__ import annotations

import argparse
from pathlib import Path

from pytest_collab.cli import add_root


def _lan(args: argparse.Namespace):  # -> LAN
    from pytest_collab.lan.profile import load_profile

    return load_profile(args.profile, Path(args.root))


def _up(args: argparse.Namespace) -> int:
    import dataclasses

    from pytest_collab.labs import up

    lan = _lan(args)
    if args.torch_wheel:   # the devices get the torch layer (split_resnet); cached by content hash
        lan = dataclasses.replace(lan, emulation={**(lan.emulation or {}), "torch_wheel": args.torch_wheel})
    for device, qdisc in up(lan).items():
        print(f"{device}: {qdisc}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from pytest_collab.labs import down

    removed = down(_lan(args))
    print(f"removed {len(removed)} objects")
    return 0


def _status(args: argparse.Namespace) -> int:
    from pytest_collab.labs import status

    lan = _lan(args)
    states = status(lan)
    for device in lan.devices:
        print(f"{device.name:<16} {device.address:<15} {states[device.name]}")
    return 0 if all(s == "running" for s in states.values()) else 1


COMMANDS = {"up": (_up, "build the device image (cached) and start every device of an emulated profile"),
            "down": (_down, "remove the devices, their programs and the lab network"),
            "status": (_status, "each device's container state (exit 1 unless all run)")}


def add_lab_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
                     names: tuple[str, ...] = tuple(COMMANDS)) -> None:
    """``up``/``down``/``status PROFILE`` under ``sub``."""
    for name in names:
        func, text = COMMANDS[name]
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("profile", metavar="PROFILE", help="profile name or path (e.g. emulated)")
        add_root(cmd, "the project root, where network_profiles/ is")
        cmd.set_defaults(func=func)
        if name == "up":
            cmd.add_argument("--torch-wheel", metavar="WHEEL",
                             help="a torch CPU cp311 wheel: devices get torch (for split_resnet); default: "
                                  "the profile's emulation.torch_wheel or $PYTEST_COLLAB_TORCH_WHEEL")


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``lab`` (up, down, status) to the ``collab`` parser."""
    lab = subparsers.add_parser("lab", help="the emulated lab: devices as containers with sshd and shaped links")
    add_lab_commands(lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND"))

