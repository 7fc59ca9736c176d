"""Board power for the partitioner's energy objective, from the samples a test holds.

A profile pass gives each device's mean board power while it worked (its ``t_start`` to
``t_end``); a measured cut gives J per inference the way the plan predicts it
(:mod:`.plan`): the edge board over the head's whole run window, plus the server board
while it decoded and ran the tail, per query. Both are board level: every process on the
device counts (docs/energy.md).
"""
from __future__ import annotations

import math
from typing import Any, Mapping


def has_power(metrics: list[str]) -> bool:
    """Whether a wrapper's board metrics include a power reading."""
    return any(m.startswith("power_w.") for m in metrics)


def mean_power(program: Any, t0: float, t1: float) -> tuple[float | None, float]:
    """(mean board W, seconds with data) of ``program``'s device over ``[t0, t1]`` (its own
    clock); ``(None, 0.0)`` where the device reported no power in that window."""
    from pytest_collab.results.energy import window_energy

    e = window_energy(program.device.name, program.power_samples(), t0, t1)
    return (e.mean_w if e.covered_s > 0 else None), e.covered_s


def measured_energy(client: Any, server: Any | None, row: Mapping[str, Any]) -> dict[str, float]:
    """``measured_j`` (J per inference, both boards) and each side's part, from a split_head
    summary row: the edge's mean power over ``t_start``..``t_end`` times that window over
    ``queries``; the server's mean power over its tail work (``tail_t_start``/``tail_t_end``,
    its own clock) times the mean work per query. NaN where a board reports no power."""
    queries = float(row.get("queries") or 0) or math.nan
    edge_w, _ = mean_power(client, row["t_start"], row["t_end"])
    parts = {"measured_edge_j": _times(edge_w, (row["t_end"] - row["t_start"]) / queries)}
    starts, ends = row.get("tail_t_start") or [], row.get("tail_t_end") or []
    if server is not None and starts:
        server_w, _ = mean_power(server, min(starts), max(ends))
        busy = sum(e - s for s, e in zip(starts, ends)) / len(starts)
        parts["measured_server_j"] = _times(server_w, busy)
    else:
        parts["measured_server_j"] = 0.0
    return {"measured_j": sum(parts.values()), **parts}


def _times(watts: float | None, seconds: float) -> float:
    return watts * seconds if watts is not None else math.nan
