"""``@pytest.mark.devices(...)`` constraints to concrete devices of a LAN profile.

A want is a kind or a tag (``Device.matches``). Wants may overlap (a Jetson is kind
``jetson`` and tag ``edge``), so picking greedily can fail where a solution exists;
selection is an exact bipartite matching (want slots -> devices), and the reason a
constraint can not be met comes from Hall's condition: some set of wants needs more
devices than all of them together match. Pure functions: no I/O, fast to test.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from pytest_collab.errors import CollabError, SelectionError
from pytest_collab.lan.profile import LAN, Device
from pytest_collab.lan.schema import NAME_RE, show

MARKER = "@pytest.mark.devices"
# Hall's condition is checked over all subsets of wants; beyond this, a generic reason.
MAX_WANTS_FOR_REASON = 12


@dataclass(frozen=True)
class Constraint:
    """How many devices of each kind/tag a test needs, and tags every one must carry."""

    counts: dict[str, int]
    tags: tuple[str, ...] = ()

    def __hash__(self) -> int:  # counts is a dict; hash its items so tests can be grouped
        return hash((tuple(self.counts.items()), self.tags))

    def __str__(self) -> str:
        parts = [f"{want}={n}" for want, n in self.counts.items()]
        if self.tags:
            parts.append(f"tags={list(self.tags)!r}")
        return f"devices({', '.join(parts)})"


def _fail(problem: str) -> CollabError:
    return CollabError(f"{MARKER}: {problem}")


def _tags(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
        raise _fail(f"tags must be a list of strings, got {show(value)}")
    return tuple(items)


def constraint_from_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Constraint:
    """Read ``devices(jetson=2, rpi=1, tags=["gpu"])`` or ``devices({"gpu-less": 1})``."""
    if len(args) > 1 or (args and not isinstance(args[0], Mapping)):
        raise _fail(f"takes kind=count keywords or one dict, got positional {show(tuple(args))}")
    merged: dict[Any, Any] = dict(args[0]) if args else {}
    for want, value in kwargs.items():
        if want in merged:
            raise _fail(f"{want!r} given twice")
        merged[want] = value
    tags = _tags(merged.pop("tags", ()))
    counts: dict[str, int] = {}
    for want, value in merged.items():
        if not isinstance(want, str) or not NAME_RE.match(want):
            raise _fail(f"{want!r} is not a kind or tag name")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(f"the count for {want!r} must be a positive integer, got {show(value)}")
        counts[want] = value
    if not counts:
        raise _fail("name at least one kind or tag with a count, e.g. devices(rpi=1)")
    return Constraint(counts=counts, tags=tags)


def _candidates(lan: LAN, c: Constraint) -> dict[str, list[Device]]:
    """For each want, the devices (profile order) that match it and carry every tag."""
    eligible = [d for d in lan.devices if all(t in d.tags for t in c.tags)]
    return {want: [d for d in eligible if d.matches(want)] for want in c.counts}


def _match(slots: list[list[Device]], taken: set[str]) -> bool:
    """Can every slot (its list of acceptable devices) get a distinct free device?"""
    owner: dict[str, int] = {}

    def augment(slot: int, seen: set[str]) -> bool:
        for device in slots[slot]:
            if device.name in taken or device.name in seen:
                continue
            seen.add(device.name)
            if device.name not in owner or augment(owner[device.name], seen):
                owner[device.name] = slot
                return True
        return False

    return all(augment(i, set()) for i in range(len(slots)))


def select_devices(lan: LAN, c: Constraint) -> dict[str, list[Device]]:
    """Distinct devices for every want, the same ones every time for the same profile.

    A device matching several wants is tried last, so a tag want (``edge``) does not
    take the Jetson a ``jetson`` want needs. Raises ``SelectionError`` with the reason.
    """
    candidates = _candidates(lan, c)
    slots = [candidates[w] for w, n in c.counts.items() for _ in range(n)]
    if not _match(slots, set()):
        raise SelectionError(unsatisfiable_reason(lan, c) or f"profile {lan.name!r} can not meet {c}")
    index = {d.name: i for i, d in enumerate(lan.devices)}
    names = [{d.name for d in found} for found in candidates.values()]
    overlap = {d.name: sum(d.name in group for group in names) for d in lan.devices}
    taken: set[str] = set()
    selection: dict[str, list[Device]] = {}
    position = 0
    for want, n in c.counts.items():
        preferred = sorted(candidates[want], key=lambda d: (overlap[d.name], index[d.name]))
        chosen: list[Device] = []
        for _ in range(n):
            position += 1
            for device in preferred:
                if device.name in taken:
                    continue
                taken.add(device.name)
                if _match(slots[position:], taken):
                    chosen.append(device)
                    break
                taken.discard(device.name)
        selection[want] = sorted(chosen, key=lambda d: index[d.name])
    return selection


def _matching(c: Constraint, wants: tuple[str, ...]) -> str:
    what = " or ".join(repr(w) for w in wants)
    if c.tags:
        what += " with tags " + ", ".join(repr(t) for t in c.tags)
    return what


def unsatisfiable_reason(lan: LAN, c: Constraint) -> str | None:
    """Why ``c`` can not be met (for a skip message), or None when it can.

    Names each want with too few devices; when each is fine alone, the smallest
    group of wants that together needs more distinct devices than it matches.
    """
    candidates = _candidates(lan, c)
    short = []
    for want, n in c.counts.items():
        found = candidates[want]
        if len(found) < n:
            names = f" ({', '.join(d.name for d in found)})" if found else ""
            short.append(f"profile {lan.name!r} has {len(found)} device(s) matching "
                         f"{_matching(c, (want,))}{names}, the test needs {n}")
    if short:
        return "; ".join(short)
    wants = tuple(c.counts)
    if len(wants) <= MAX_WANTS_FOR_REASON:
        for size in range(2, len(wants) + 1):
            for group in combinations(wants, size):
                union = [d for d in lan.devices if any(d.matches(w) for w in group)
                         and all(t in d.tags for t in c.tags)]
                need = sum(c.counts[w] for w in group)
                if len(union) < need:
                    counts = ", ".join(f"{w}={c.counts[w]}" for w in group)
                    return (f"profile {lan.name!r} has {len(union)} distinct device(s) matching "
                            f"{_matching(c, group)} ({', '.join(d.name for d in union)}), "
                            f"the test needs {need} ({counts})")
        return None
    slots = [candidates[w] for w, n in c.counts.items() for _ in range(n)]
    if _match(slots, set()):
        return None
    return f"profile {lan.name!r} has too few distinct devices for {c}"


def describe(selection: Mapping[str, Sequence[Device]]) -> str:
    """One line for report headers: ``jetson: jetson-1, jetson-2; rpi: rpi-1``."""
    if not selection:
        return "no devices"
    return "; ".join(f"{want}: {', '.join(d.name for d in devices)}"
                     for want, devices in selection.items())
