"""What a bundle says about its run: resolved configuration, lock, and a run.json fit to share.

Pure functions over a run's ``run.json``, so the
same run always yields the same bytes, and sanitizing twice changes nothing (a bundle
imported and exported again is identical). Nothing here may leak a device's address,
SSH user or key path: a bundle is handed to other people.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pytest_collab.testcase import belongs_to

#: the run.json keys a bundle keeps (the rest are local details: rootdir, ...)
KEPT_KEYS = ("run_id", "started", "finished", "argv", "tests", "versions", "git", "workers",
             "settings", "options", "images", "artifacts", "seeds")
#: the device fields a bundle keeps: its class, never how to reach it
DEVICE_KEYS = ("name", "kind", "transport", "runtime", "arch", "os", "tags", "resources")


def _device(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in DEVICE_KEYS if k in d}


def _strip_path(text: str, root: str | None) -> str:
    if root and root != "/" and root in text:
        text = text.replace(root.rstrip("/") + "/", "").replace(root, ".")
    return text


def _profile_name(value: Any) -> Any:
    text = str(value)
    return Path(text).stem if text.endswith((".yaml", ".yml")) else value


def _test(t: dict[str, Any]) -> dict[str, Any]:
    out = dict(t)
    if "programs" in out:  # argv holds device paths; the name and device are what matter
        out["programs"] = [{k: p[k] for k in ("name", "device") if k in p} for p in out["programs"]]
    return out


def sanitize_run_info(info: dict[str, Any]) -> dict[str, Any]:
    """``run.json`` without addresses, users, key paths or local folders (idempotent)."""
    root = info.get("rootdir")
    clean: dict[str, Any] = {k: info[k] for k in KEPT_KEYS if k in info}
    if "argv" in clean:
        argv = [str(a) for a in clean["argv"]]
        clean["argv"] = [Path(argv[0]).name, *(_strip_path(a, root) for a in argv[1:])] if argv else []
    if "settings" in clean:
        settings = dict(clean["settings"])
        if "lan" in settings:
            settings["lan"] = _profile_name(settings["lan"])
        clean["settings"] = settings
    if "tests" in clean:
        clean["tests"] = {k: _test(v) for k, v in clean["tests"].items()}
    if isinstance(clean.get("options"), dict):  # values may name local files
        clean["options"] = {group: {flag: _strip_path(v, root) if isinstance(v, str) else v
                                    for flag, v in (flags or {}).items()}
                            for group, flags in clean["options"].items()}
    profile = info.get("profile") or {}
    clean["profile"] = {"name": _profile_name(profile.get("name")),
                        "devices": [_device(d) for d in profile.get("devices", [])]}
    return clean


def lab_class(info: dict[str, Any]) -> dict[str, str]:
    """The class of lab a run ran on (``local``, ``emulated`` or ``ssh``), with a sentence.

    Replays state it for both runs: numbers from emulated devices are not numbers from
    the original hardware, and a reader must never have to guess which is which.
    """
    profile = info.get("profile") or {}
    name = str(profile.get("name") or "unknown")
    devices = profile.get("devices") or []
    transports = sorted({str(d.get("transport", "local")) for d in devices}) or ["local"]
    runtimes = sorted({str(d.get("runtime", "process")) for d in devices}) or ["process"]
    if name.startswith("emulated"):
        kind, what = "emulated", "devices emulated as containers"
    elif transports == ["local"]:
        kind = "local"
        what = "virtual devices on one machine, " + ("containers" if runtimes == ["docker"] else "local processes")
    else:
        kind, what = "ssh", f"{'/'.join(transports)} devices, {'/'.join(runtimes)} runtime"
    return {"class": kind, "profile": name, "describe": f"profile {name} ({what})"}


def testcase_tests(name: str, info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's tests that belong to test case ``name``."""
    found = {}
    for nodeid, test in (info.get("tests") or {}).items():
        if test.get("testcase") == name or belongs_to(nodeid, name):
            found[nodeid] = test
    return found


def recorded_options(name: str, info: dict[str, Any]) -> dict[str, Any]:
    """The experiment options test case ``name`` ran with, as pytest resolved them.

    run.json's ``options`` holds every experiment option by group (command line,
    ``PYTEST_ADDOPTS``, ini ``addopts`` or default: whatever pytest used); a test case's
    group is named after its folder. A run written before options were recorded has
    none: its bundle says so by an empty mapping rather than guessing from argv.
    """
    grouped = info.get("options") or {}
    return dict(grouped.get(name) or {}) if isinstance(grouped, dict) else {}


def option_args(options: dict[str, Any]) -> list[str]:
    """Command-line arguments that give every option its recorded value."""
    args = []
    for flag, value in options.items():
        if value is True:
            args.append(flag)
        elif isinstance(value, list):
            args.extend(f"{flag}={item}" for item in value)
        elif value not in (None, False):
            args.append(f"{flag}={value}")
    return args


def resolve_config(name: str, info: dict[str, Any]) -> dict[str, Any]:
    """Tests (parameters, device constraints), experiment options, device classes, lab class."""
    tests = {}
    for nodeid, test in sorted(testcase_tests(name, info).items()):
        chosen = test.get("devices") or {}
        tests[nodeid] = {"params": test.get("params", {}),
                         "devices": {want: len(names) for want, names in chosen.items()},
                         "outcome": test.get("outcome")}
    kinds: dict[str, dict[str, Any]] = {}
    for d in (info.get("profile") or {}).get("devices", []):
        entry = kinds.setdefault(str(d.get("kind")), {"count": 0, "tags": [], "resources": d.get("resources", {})})
        entry["count"] += 1
        entry["tags"] = sorted(set(entry["tags"]) | set(d.get("tags") or []))
    return {"testcase": name, "tests": tests, "kinds": kinds, "lab": lab_class(info),
            "options": recorded_options(name, info)}


def code_digest(code: dict[str, bytes]) -> str:
    """One sha256 over the test case's files (path and content), independent of order."""
    h = hashlib.sha256()
    for rel in sorted(code):
        h.update(f"{rel}\0{hashlib.sha256(code[rel]).hexdigest()}\n".encode())
    return h.hexdigest()


def resolve_lock(info: dict[str, Any], code: dict[str, bytes]) -> dict[str, Any]:
    """What the baseline ran with: versions, commit, digests, seeds (as far as run.json knows)."""
    seeds = dict(info.get("seeds") or {})
    for nodeid, test in (info.get("tests") or {}).items():
        for key, value in (test.get("params") or {}).items():
            if "seed" in key.lower():
                seeds[f"{nodeid}:{key}"] = value
    return {"versions": info.get("versions", {}), "git": info.get("git", {}),
            "images": info.get("images") or {}, "artifacts": info.get("artifacts") or {},
            "seeds": seeds, "code_sha256": code_digest(code)}
