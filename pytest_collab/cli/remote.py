"""``collab run | sync | shell``: ad-hoc work on a lab's devices (the old per-device
bash scripts): a command on a kind/tag/name with one result per device, a folder pushed
to every device, an interactive shell.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from pytest_collab.cli.lan import connector, load_lan, targets
from pytest_collab.errors import CollabError


def cmd_run(args: argparse.Namespace) -> int:
    from pytest_collab.transport.group import format_results, run_group
    lan = load_lan(args.profile)
    results = run_group(targets(lan, args.target), args.command, timeout=args.timeout,
                        connect=connector(lan))
    print(format_results(results))
    return 0 if all(r.ok for r in results.values()) else 1


def cmd_sync(args: argparse.Namespace) -> int:
    from pytest_collab.transport.group import map_devices
    lan = load_lan(args.profile)
    local = Path(args.directory).resolve()
    if not local.is_dir():
        raise CollabError(f"{args.directory} is not a folder")
    connect = connector(lan)

    def push(device: Any) -> str:
        remote = args.dest or f"{device.workdir.rstrip('/')}/{local.name}"
        transport = connect(device)
        try:
            transport.sync(local, remote)
        finally:
            transport.close()
        return remote
    outcomes = map_devices(targets(lan, args.target), push, timeout=args.timeout)
    for name, out in outcomes.items():
        print(f"{name}: {f'-> {out.value}' if out.ok else f'FAILED: {out.error}'}")
    return 0 if all(o.ok for o in outcomes.values()) else 1


def shell_argv(device: Any, profile_path: Path | None) -> list[str]:
    """The OpenSSH client command line for an interactive shell, same trust rules."""
    from pytest_collab.transport.ssh import key_path, known_hosts_files
    if device.transport != "ssh" or device.ssh is None:
        return [os.environ.get("SHELL", "/bin/sh")]
    cfg = device.ssh
    _, files = known_hosts_files(device, profile_path)
    checking = "accept-new" if cfg.host_key_policy == "tofu" else "yes"
    argv = ["ssh", "-p", str(cfg.port), "-o", f"StrictHostKeyChecking={checking}",
            "-o", "UserKnownHostsFile=" + " ".join(shlex.quote(str(f)) for f in files),
            "-o", f"ConnectTimeout={int(cfg.connect_timeout)}"]
    key = key_path(device)
    if key:
        argv += ["-i", key]
    argv.append(f"{cfg.user}@{device.address}" if cfg.user else device.address)
    return argv


def cmd_shell(args: argparse.Namespace) -> int:
    lan = load_lan(args.profile)
    argv = shell_argv(lan.device(args.device), lan.path)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0   # not reached


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("run", help="run a shell command on devices; result per device")
    p.add_argument("profile")
    p.add_argument("target", help="device name, kind, tag, comma list, or 'all'")
    p.add_argument("command", help="shell command, quoted")
    p.add_argument("--timeout", type=float, default=60,
                   help="per device; the remote command is ended too (default 60s)")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("sync", help="push a folder to devices (only changed files)")
    p.add_argument("profile")
    p.add_argument("directory")
    p.add_argument("target", nargs="?", help="device, kind or tag (default: all)")
    p.add_argument("--dest", help="remote folder (default: <device workdir>/<folder name>)")
    p.add_argument("--timeout", type=float, default=300, help="per device (default 300s)")
    p.set_defaults(func=cmd_sync)

    p = subparsers.add_parser("shell", help="an interactive shell on a device")
    p.add_argument("profile")
    p.add_argument("device")
    p.set_defaults(func=cmd_shell)
