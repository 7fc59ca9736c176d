"""The host's surroundings in Ansible's names: DNS, the login user, the kernel command
line, load, FIPS, AppArmor, SSH host keys (``system/{dns,user,cmdline,loadavg,fips,
apparmor,ssh_pub_keys}.py``, restated). Pure functions over the script's raw text."""
from __future__ import annotations

import shlex
from typing import Any

SSH_ALGOS = ("dsa", "rsa", "ecdsa", "ed25519")
SSH_KEY_DIRS = ("/etc/ssh", "/etc/openssh", "/etc")


def parse_dns(resolv: str) -> dict[str, Any]:
    dns: dict[str, Any] = {}
    for line in resolv.splitlines():
        tokens = line.split()
        if not tokens or line.startswith(("#", ";")):
            continue
        if tokens[0] == "nameserver":
            dns.setdefault("nameservers", []).extend(tokens[1:])
        elif tokens[0] == "domain" and len(tokens) > 1:
            dns["domain"] = tokens[1]
        elif tokens[0] in ("search", "sortlist"):
            dns[tokens[0]] = tokens[1:]
        elif tokens[0] == "options":
            dns["options"] = {o.split(":", 1)[0]: (o.split(":", 1)[1] if ":" in o else True) for o in tokens[1:]}
    return {"dns": dns}


def parse_user(text: str) -> dict[str, Any]:
    """``id`` numbers and the passwd entry of the login user."""
    lines = text.splitlines()
    ids = lines[0].split() if lines else []
    if len(ids) < 4 or not all(i.isdigit() for i in ids[1:4]):
        return {}
    name, real_uid, uid, real_gid = ids[0], int(ids[1]), int(ids[2]), int(ids[3])
    out: dict[str, Any] = {"user_id": name, "real_user_id": real_uid, "effective_user_id": uid,
                           "real_group_id": real_gid, "effective_group_id": real_gid}   # sic, as Ansible
    entry = lines[1].split(":") if len(lines) > 1 else []
    if len(entry) >= 7 and entry[2].isdigit() and entry[3].isdigit():
        out.update(user_uid=int(entry[2]), user_gid=int(entry[3]), user_gecos=entry[4], user_dir=entry[5],
                   user_shell=entry[6])
    return out


def parse_cmdline(text: str) -> dict[str, Any]:
    """``cmdline`` (last value wins) and ``proc_cmdline`` (repeated keys become lists)."""
    if not text.strip():
        return {}
    try:
        pieces = shlex.split(text, posix=False)
    except ValueError:
        return {"cmdline": {}, "proc_cmdline": {}}
    last: dict[str, Any] = {}
    every: dict[str, Any] = {}
    for piece in pieces:
        key, sep, value = piece.partition("=")
        if not sep:
            last[key] = every[key] = True
            continue
        last[key] = value
        if key in every and every[key] is not True:
            every[key] = [*(every[key] if isinstance(every[key], list) else [every[key]]), value]
        else:
            every[key] = value
    return {"cmdline": last, "proc_cmdline": every}


def parse_loadavg(py_loadavg: Any, proc_loadavg: str) -> dict[str, Any]:
    """The interpreter's ``os.getloadavg()`` (Ansible's source), else /proc/loadavg."""
    values = py_loadavg if isinstance(py_loadavg, list) and len(py_loadavg) == 3 else proc_loadavg.split()[:3]
    try:
        one, five, fifteen = (float(v) for v in values)
    except ValueError:
        return {}
    return {"loadavg": {"1m": one, "5m": five, "15m": fifteen}}


def parse_ssh_keys(text: str) -> dict[str, Any]:
    """``path keytype key ...`` lines; the first directory holding an algorithm wins."""
    found = {}
    for line in text.splitlines():
        path, *rest = line.split()
        if len(rest) >= 2:
            found[path] = rest[:2]
    out: dict[str, Any] = {}
    for keydir in SSH_KEY_DIRS:
        for algo in SSH_ALGOS:
            fact = f"ssh_host_key_{algo}_public"
            if fact in out:
                return out
            key = found.get(f"{keydir}/ssh_host_{algo}_key.pub")
            if key:
                out[fact], out[f"{fact}_keytype"] = key[1], key[0]
    return out


def parse_host(s: dict[str, str], py: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if "resolv" in s:
        facts.update(parse_dns(s["resolv"]))
    facts.update(parse_user(s.get("user", "")))
    facts.update(parse_cmdline(s.get("cmdline", "")))
    facts.update(parse_loadavg(py.get("loadavg"), s.get("loadavg", "")))
    if "fips" in s:
        facts["fips"] = s["fips"].strip() == "1"
    if "apparmor" in s:
        facts["apparmor"] = {"status": "enabled" if s["apparmor"].strip() == "yes" else "disabled"}
    facts.update(parse_ssh_keys(s.get("ssh_keys", "")))
    return facts
