"""The Lab page's data: a profile's devices, their facts, health and leases.

Health is what ``collab lan check`` does (:func:`pytest_collab.cli.lan.check_devices`),
facts are refreshed as ``collab facts`` does (gather, apply, save); leases are read
from :mod:`pytest_collab.leases.files`. Nothing secret leaves this module: profiles hold
no secrets by schema, and :func:`redact` masks anything that looks like one anyway
(key paths, variables naming keys, password/token-like names) in case a fact carries it.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import CollabError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import LAN, Device

SECRET_NAME = re.compile(r"pass(word|phrase)?|secret|token|private|credential|api_?key|key_?text"
                         r"|^key$|^key_env$|_key$", re.I)
MASK = "(hidden)"


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys masked, at any depth."""
    if isinstance(value, dict):
        return {k: (MASK if SECRET_NAME.search(str(k)) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def profile_names(root: Path) -> list[str]:
    """Profiles ``--lan`` can name: the project's ``network_profiles/`` and the embedded ones."""
    from pytest_collab.lan.profile import EMBEDDED_DIR, PROFILE_DIR, SUFFIXES

    names = {p.stem for p in (Path(root) / PROFILE_DIR).glob("*") if p.suffix in SUFFIXES}
    names |= {p.stem for p in EMBEDDED_DIR.glob("*.yaml")}
    return sorted(names)


def load(root: Path, name: str) -> "LAN":
    """The profile ``name`` (a ProfileError names the file and the key when it is broken)."""
    from pytest_collab.lan.profile import load_profile

    return load_profile(name, Path(root))


class LabState:
    """What the dashboard learned about devices: last health check and refreshed facts.

    Facts of a built-in (read-only) profile can not be saved; they are kept here so
    the page still shows them, marked as not saved.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.health: dict[tuple[str, str], dict[str, Any]] = {}
        self.facts: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}

    def devices(self, lan: "LAN") -> list[dict[str, Any]]:
        """One row per device: identity, key facts, lease, last health."""
        from pytest_collab.lan.facts_export import ALIASES, DEFAULT_COLUMNS
        from pytest_collab.leases.files import list_leases

        leases = {row["device"]: row for row in list_leases(lan)}
        rows = []
        for device in lan.devices:
            kept = self.facts.get((lan.name, device.name))
            from_memory = kept is not None and not device.facts
            if kept is not None and from_memory:
                device.facts, device.facts_time = kept
            summary = {col: ALIASES[col](device) for col in DEFAULT_COLUMNS}
            lease = leases.get(device.name, {})
            rows.append({
                "name": device.name, "kind": device.kind, "address": device.address,
                "transport": device.transport, "runtime": device.runtime, "tags": list(device.tags),
                "arch": summary.get("arch"), "summary": redact(summary),
                "facts": redact(device.facts), "facts_time": device.facts_time,
                "facts_saved": not from_memory,
                "ssh": redact(device.ssh.to_dict()) if device.ssh is not None else None,
                "lease": redact({k: v for k, v in lease.items() if k not in ("device", "kind")}),
                "health": self.health.get((lan.name, device.name)),
            })
        return rows

    def view(self, lan: "LAN") -> dict[str, Any]:
        from pytest_collab.leases.files import lease_dir_for

        return {"name": lan.name, "path": str(lan.path) if lan.path else None,
                "description": lan.description,
                "controller": {"name": lan.controller.name, "address": lan.controller.address},
                "lease_dir": str(lease_dir_for(lan)), "devices": self.devices(lan)}

    def check(self, lan: "LAN", devices: list["Device"], timeout: float = 20) -> dict[str, Any]:
        """Run ``collab lan check``'s checks; remember and return one result per device."""
        from pytest_collab.cli.lan import check_devices

        outcomes = check_devices(lan, devices, timeout)
        out: dict[str, Any] = {}
        for name, outcome in outcomes.items():
            result: dict[str, Any] = {"ok": outcome.ok, "checked": time.time(),
                                      "duration_s": round(outcome.duration_s, 3)}
            if outcome.ok:
                (connect_s, latency), got = outcome.value
                result.update(latency_ms=round(latency * 1000, 1), connect_s=round(connect_s, 2),
                              python=got.get("ansible_python_version"),
                              docker=got.get("collab_docker_version"),
                              disk_free_gb=got.get("collab_disk_free_gb"),
                              temp_c=got.get("collab_temperature_max_c"))
            else:
                result["error"] = outcome.error
            with self._lock:
                self.health[(lan.name, name)] = result
            out[name] = result
        return out

    def refresh_facts(self, lan: "LAN", devices: list["Device"], timeout: float = 60) -> dict[str, Any]:
        """Gather facts as ``collab facts`` does; saved in the profile unless it is built in."""
        from pytest_collab.cli.lan import connector, save_lan
        from pytest_collab.lan import facts

        outcomes = facts.gather_many(devices, connect=connector(lan), timeout=timeout)
        result: dict[str, Any] = {}
        for device in devices:
            outcome = outcomes[device.name]
            if outcome.ok:
                facts.apply(device, outcome.value)
                with self._lock:
                    self.facts[(lan.name, device.name)] = (device.facts, device.facts_time or "")
            result[device.name] = {"ok": outcome.ok, "error": outcome.error}
        try:
            save_lan(lan)
            saved, note = True, f"saved in {lan.path}"
        except CollabError as exc:
            saved, note = False, f"not saved: {exc}"
        return {"devices": result, "saved": saved, "note": note}


def pick(lan: "LAN", names: list[str] | None) -> list["Device"]:
    """The devices named (all when none are); unknown names raise naming the profile."""
    if not names:
        return list(lan.devices)
    return [lan.device(n) for n in names]
