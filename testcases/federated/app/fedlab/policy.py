"""Round policy: which clients answered, and whether enough did to go on.

A client that returns an error, or no reply within the round timeout, has failed; it is
dropped from later rounds (a crashed device does not come back mid-run). The run goes
on while at least ``min-fit-clients`` train and ``min-evaluate-clients`` evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

NO_REPLY = "no reply within the round timeout (device down, killed or too slow)"


class TooFewClients(RuntimeError):
    """Fewer clients than the round policy's minimum completed a phase."""


@dataclass
class Outcome:
    """Replies of one phase by node id: the good ones and why the others failed."""

    ok: dict[int, object] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def collect(sent: Iterable[int], replies: Iterable[object]) -> Outcome:
    """Sort ``replies`` (Flower Messages) to the nodes in ``sent`` into ok and failed."""
    out = Outcome()
    for msg in replies:
        node = msg.metadata.src_node_id  # type: ignore[attr-defined]
        if msg.has_error():  # type: ignore[attr-defined]
            err = msg.error  # type: ignore[attr-defined]
            out.failed[node] = f"error {err.code}: {err.reason}"
        else:
            out.ok[node] = msg
    for node in sent:
        if node not in out.ok and node not in out.failed:
            out.failed[node] = NO_REPLY
    return out


def check_quorum(phase: str, rnd: int, out: Outcome, names: Mapping[int, str],
                 minimum: int) -> None:
    """Raise ``TooFewClients`` naming every lost client when fewer than ``minimum`` replied."""
    if len(out.ok) >= minimum:
        return
    lost = "; ".join(f"{names.get(n, f'node {n}')}: {why}" for n, why in sorted(out.failed.items()))
    total = len(out.ok) + len(out.failed)
    raise TooFewClients(
        f"round {rnd} {phase}: only {len(out.ok)} of {total} clients replied, the policy "
        f"needs min-{phase}-clients={minimum}. Lost: {lost or 'none'}. Bring the devices "
        f"back or lower min-{phase}-clients.")
