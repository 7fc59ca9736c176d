"""``collab lan``: set up a lab once (init, discover, add, import, export) and look at it
(check, show). Also the small helpers the facts/remote commands share (profile by
name, devices by target, a connect function that knows the profile's known_hosts).
"""
from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_collab.errors import CollabError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import LAN, Device


# -- helpers shared by cli/facts.py and cli/remote.py -------------------------------------
def load_lan(name: str) -> "LAN":
    from pytest_collab.lan.profile import load_profile
    return load_profile(name, Path.cwd())


def profile_path_for(name: str) -> Path:
    """Where ``collab lan init NAME`` writes: network_profiles/NAME.yaml (or the path)."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return Path.cwd() / "network_profiles" / f"{name}.yaml"


def save_lan(lan: "LAN") -> None:
    """Save a loaded profile; built-in ones (and links to them) raise ``ReadOnlyProfile``."""
    from pytest_collab.lan.profile import ReadOnlyProfile, save_profile
    if lan.path is None:
        raise ReadOnlyProfile(f"profile {lan.name!r} was not read from a file; "
                              f"create your own with `collab lan init NAME`")
    save_profile(lan, lan.path)


def targets(lan: "LAN", target: str | None) -> list["Device"]:
    """``all``/None, a device name, or a kind/tag (comma-separated for several)."""
    if target in (None, "all"):
        return list(lan.devices)
    chosen: list[Device] = []
    for want in target.split(","):
        hit = [d for d in lan.devices if d.name == want] or [d for d in lan.devices if d.matches(want)]
        if not hit:
            kinds = sorted({d.kind for d in lan.devices} | {t for d in lan.devices for t in d.tags})
            raise CollabError(f"profile {lan.name!r} has no device, kind or tag {want!r}; "
                              f"kinds/tags: {', '.join(kinds)}")
        chosen += [d for d in hit if d not in chosen]
    return chosen


def connector(lan: "LAN", **extra: Any) -> Callable[["Device"], Any]:
    """A ``connect(device)`` for groups: SSH devices get the profile's known_hosts (and, in
    an emulated profile, refuse addresses this host would reach through a gateway)."""
    from pytest_collab.transport import get_transport

    extra = {"local_only": lan.emulated, **extra}

    def connect(device: "Device") -> Any:
        if device.transport == "ssh":
            return get_transport(device, profile_path=lan.path, **extra)
        return get_transport(device)
    return connect


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join(fmt.format(*map(str, r)).rstrip() for r in [header, *rows])


# -- commands ----------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from pytest_collab.lan import facts
    from pytest_collab.lan.profile import LAN, Controller, Device, save_profile
    path = profile_path_for(args.name)
    if path.exists() and not args.force:
        raise CollabError(f"{path} exists; use --force to overwrite or `collab lan add`")
    local = facts.gather_local()
    host = socket.gethostname().split(".")[0] or "controller"
    controller = Controller(name=host, address=args.address or "127.0.0.1", facts=local)
    # A profile needs one device: the controller itself, usable as a local device.
    me = Device(name=host, kind="controller", transport="local", facts=local,
                facts_time=facts.now_iso())
    facts.apply(me, local)
    lan = LAN(name=path.stem, path=path, controller=controller, devices=[me])
    save_profile(lan, path)
    _gitignore(path)
    print(f"created {path} (controller {host}); add devices with `collab lan discover "
          f"{path.stem} CIDR` or `collab lan add`")
    return 0


def _gitignore(path: Path) -> None:
    """Private profiles stay out of git; example*.yaml profiles are committed."""
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# private lab profiles and their host keys\n*.yaml\n*.yml\n"
                          "*.known_hosts\n!example*.yaml\n")


def _ssh_config(args: argparse.Namespace, **more: Any) -> Any:
    from pytest_collab.lan.profile import SSHConfig
    data = {"user": args.user, "port": args.port, "key": args.key, **more}
    return SSHConfig(**{k: v for k, v in data.items() if v is not None})


def cmd_discover(args: argparse.Namespace) -> int:
    from pytest_collab.lan import discover, facts
    from pytest_collab.lan.profile import Device
    lan = load_lan(args.profile)
    print(f"probing {args.cidr} port {args.port} (timeout {args.timeout}s)...", file=sys.stderr)
    found = discover.discover(args.cidr, port=args.port, timeout=args.timeout,
                              mdns=False if args.no_mdns else None)
    known = {d.address for d in lan.devices}
    fresh = [f for f in found if f.address not in known]
    print(f"{len(found)} answered, {len(fresh)} new", file=sys.stderr)
    policy = "tofu" if args.trust else "reject"
    candidates = [Device(name=f"host-{i}", kind="device", address=f.address, transport="ssh",
                         ssh=_ssh_config(args, port=f.port, host_key_policy=policy))
                  for i, f in enumerate(fresh)]
    outcomes = facts.gather_many(candidates, connect=connector(lan), timeout=args.timeout + 30)
    taken = {d.name for d in lan.devices}
    added = 0
    for spot, device in zip(fresh, candidates):
        outcome = outcomes[device.name]
        got = outcome.value if outcome.ok else None
        device.name = discover.device_name(spot, got, taken)
        device.kind = args.kind or discover.guess_kind(got)
        if got:
            facts.apply(device, got)
        if device.ssh is not None:
            device.ssh.host_key_policy = "reject"     # trusted once, checked from now on
        status = "facts ok" if got else f"no facts: {outcome.error}"
        line = f"{device.address:15} {device.name:20} {device.kind:8} {spot.banner[:30]:30} {status}"
        if args.all or (sys.stdin.isatty() and input(f"add {line}? [y/N] ").lower() == "y"):
            lan.devices.append(device)
            added += 1
        else:
            print(line)
    if added:
        save_lan(lan)
    print(f"added {added} device(s) to {lan.path}" if added else
          "nothing added (use --all, or run in a terminal to choose)", file=sys.stderr)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from pytest_collab.lan.profile import Device
    lan = load_lan(args.profile)
    if any(d.name == args.device for d in lan.devices):
        raise CollabError(f"profile {lan.name!r} already has a device {args.device!r}")
    local = args.local
    lan.devices.append(Device(name=args.device, kind=args.kind, address=args.address,
                              transport="local" if local else "ssh", tags=tuple(args.tag),
                              ssh=None if local else _ssh_config(args)))
    save_lan(lan)
    print(f"added {args.device} to {lan.path}; gather its facts with `collab facts {lan.name} "
          f"{args.device}`")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pytest_collab.lan import inventory
    lan = load_lan(args.profile)
    inv = inventory.load(Path(args.inventory))
    devices = inventory.to_devices(inv)
    inventory.merge_groups(lan, inv)
    names = {d.name: i for i, d in enumerate(lan.devices)}
    added = replaced = 0
    for device in devices:
        if device.name in names and not args.replace:
            inv.problems.append(f"host {device.name}: already in the profile; kept (--replace)")
        elif device.name in names:
            lan.devices[names[device.name]] = device
            replaced += 1
        else:
            lan.devices.append(device)
            added += 1
    for problem in inv.problems:
        print(f"warning: {problem}", file=sys.stderr)
    save_lan(lan)
    print(f"imported {added} new and {replaced} replaced device(s) into {lan.path}; "
          f"{len(inv.problems)} note(s) above")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pytest_collab.lan import inventory_write
    fmt = args.format or ("yaml" if (args.output or "").endswith((".yml", ".yaml")) else "ini")
    text = inventory_write.export(load_lan(args.profile), fmt)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def check_devices(lan: "LAN", devices: list["Device"], timeout: float = 20) -> dict[str, Any]:
    """Connect, time a no-op and gather facts on each device: name -> ``group.Outcome``
    whose value is ``((connect+facts s, latency s), facts)``. The dashboard calls it too."""
    from pytest_collab.lan import facts
    from pytest_collab.transport.group import map_devices
    connect = connector(lan)

    def check(device: "Device") -> tuple[tuple[float, float], dict[str, Any]]:
        t0 = time.monotonic()
        transport = connect(device)
        try:
            latency = transport.run("true", timeout=timeout).duration_s
            got = facts.gather(transport, timeout=timeout)
        finally:
            transport.close()
        return (time.monotonic() - t0, latency), got

    return map_devices(devices, check, timeout=timeout + 40)


def cmd_check(args: argparse.Namespace) -> int:
    lan = load_lan(args.profile)
    outcomes = check_devices(lan, targets(lan, args.target), args.timeout)
    rows = []
    for name, out in outcomes.items():
        if not out.ok:
            rows.append([name, "FAIL", "", "", "", "", "", out.error or ""])
            continue
        assert out.value is not None
        (connect_s, latency), got = out.value
        rows.append([name, "ok", f"{latency * 1000:.0f}ms", got.get("ansible_python_version") or "-",
                     got.get("collab_docker_version") or "-",
                     f"{got.get('collab_disk_free_gb')}GB", got.get("collab_temperature_max_c") or "-",
                     f"connect+facts {connect_s:.1f}s"])
    print(table(rows, ["device", "state", "latency", "python", "docker", "disk free", "temp C",
                       "note"]))
    return 0 if all(o.ok for o in outcomes.values()) else 1


def cmd_show(args: argparse.Namespace) -> int:
    from pytest_collab.lan import facts_export
    lan = load_lan(args.profile)
    sys.stdout.write(facts_export.export(targets(lan, args.target), "markdown",
                                         columns=args.columns.split(",") if args.columns else None))
    return 0


def _ssh_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="SSH user (default: your local user)")
    parser.add_argument("--port", type=int, default=22, help="SSH port (default: 22)")
    parser.add_argument("--key", help="private key PATH (never key text)")


def register(subparsers: Any) -> None:
    lan = subparsers.add_parser("lan", help="set up and inspect a lab profile")
    sub = lan.add_subparsers(title="lan commands", metavar="ACTION", required=True)

    p = sub.add_parser("init", help="new profile with this controller's facts")
    p.add_argument("name")
    p.add_argument("--address", help="the controller's address devices reach (default 127.0.0.1)")
    p.add_argument("--force", action="store_true", help="overwrite an existing profile")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("discover", help="scan a subnet for SSH devices and add them")
    p.add_argument("profile")
    p.add_argument("cidr", help="e.g. 192.168.1.0/24")
    _ssh_args(p)
    p.add_argument("--timeout", type=float, default=0.5, help="probe timeout (default 0.5s)")
    p.add_argument("--kind", help="kind for every found device (default: guessed from facts)")
    p.add_argument("--trust", action="store_true",
                   help="record unknown host keys (trust on first use) into the profile's "
                        "known_hosts; default: reject them")
    p.add_argument("--all", action="store_true", help="add every new device without asking")
    p.add_argument("--no-mdns", action="store_true", help="skip mDNS (_ssh._tcp) browsing")
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("add", help="add one device")
    p.add_argument("profile")
    p.add_argument("device")
    p.add_argument("address")
    p.add_argument("--kind", required=True)
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--local", action="store_true", help="a local (non-SSH) device")
    _ssh_args(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("import", help="import an Ansible INI or YAML inventory")
    p.add_argument("profile")
    p.add_argument("inventory")
    p.add_argument("--replace", action="store_true", help="replace devices with the same name")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write the profile as an Ansible inventory (INI or YAML)")
    p.add_argument("profile")
    p.add_argument("--format", choices=("ini", "yaml"),
                   help="default: yaml for an --output ending in .yml/.yaml, else ini")
    p.add_argument("--output", "-o", help="file (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("check", help="reachable? latency, auth, python, docker, disk, temp")
    p.add_argument("profile")
    p.add_argument("target", nargs="?", help="device, kind or tag (default: all)")
    p.add_argument("--timeout", type=float, default=20, help="per step (default 20s)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("show", help="a table of the devices and their facts")
    p.add_argument("profile")
    p.add_argument("target", nargs="?")
    p.add_argument("--columns", help="comma-separated columns or fact names")
    p.set_defaults(func=cmd_show)
