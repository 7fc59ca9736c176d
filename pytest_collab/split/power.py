"""Board power for the partitioner's energy objective, from the samples a test holds.

A profile pass gives each device's mean board power while it worked (its ``t_start`` to
``t_end``); a measured cut gives J per inference the way the plan predicts it
(:mod:`.plan`): the edge board over the head's whole run window, plus the server board
while it decoded and ran the tail, per query. Both are board level: every process on the
device counts (docs/energy.md).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence


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
    summary row: per side, the board's mean power over its span of the run times its mean
    time per query: the edge's whole queries (``t_start``/``t_end``, one per query, its
    clock), the server's decode + tail (``tail_t_start``/``tail_t_end``, its clock). NaN
    where a board reports no power."""
    parts = {"measured_edge_j": _per_query(client, row["t_start"], row["t_end"])}
    starts = row.get("tail_t_start") or []
    works = server is not None and len(starts) > 0
    parts["measured_server_j"] = _per_query(server, starts, row["tail_t_end"]) if works else 0.0
    return {"measured_j": sum(parts.values()), **parts}


def _per_query(program: Any, starts: Sequence[float], ends: Sequence[float]) -> float:
    if not len(starts):
        return math.nan
    watts, _ = mean_power(program, min(starts), max(ends))
    seconds = sum(e - s for s, e in zip(starts, ends)) / len(starts)
    return watts * seconds if watts is not None else math.nan
