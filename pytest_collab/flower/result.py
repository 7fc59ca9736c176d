"""What one Flower run measured, as rows: per round, per client message, and the run.

Built from the rows the device-side hooks print (``collab_devicekit.flower.hooks``):
round rows come from Flower's own ``Result`` records of the strategy (aggregated
train/evaluate metrics of the ClientApps and the ServerApp's evaluation), client rows
from each ClientApp task, the status from the SuperLink (``run_app``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: The phase prefix of a round metric, unless the app's own key already says it.
SOURCES = {"train": ("train",), "evaluate": ("eval", "evaluate"), "server": ("server",)}


def column(name: str) -> str:
    """A metric key as a results column (``num-examples`` -> ``num_examples``)."""
    return re.sub(r"\W", "_", name)


def round_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per round: ``round``, ``round_time_s`` and ``<source>_<metric>`` columns."""
    merged: dict[int, dict[str, Any]] = {}
    stamps: dict[int, float] = {}
    for row in rows:
        if row.get("flower") != "round":
            continue
        rnd = int(row["round"])
        out = merged.setdefault(rnd, {"round": rnd})
        prefixes = SOURCES.get(row["source"], (row["source"],))
        for key, value in row.get("metrics", {}).items():
            key = column(key)
            name = key if key.startswith(prefixes) else f"{prefixes[0]}_{key}"
            out[name] = value
        stamps[rnd] = max(stamps.get(rnd, 0.0), float(row.get("t", 0.0)))
    ordered = sorted(merged)
    for prev, rnd in zip(ordered, ordered[1:]):
        merged[rnd]["round_time_s"] = stamps[rnd] - stamps[prev]
    return [merged[r] for r in ordered]


def client_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ClientApp message: device, node id, phase, times and bytes both ways."""
    out = []
    for row in rows:
        if row.get("flower") != "client":
            continue
        item = {"round": row.get("round"), "client": row["device"], "node_id": str(row["node_id"]),
                "phase": row["phase"], "status": row["status"], "time_s": row["time_s"],
                "bytes_sent": row["bytes_to_client"], "bytes_received": row["bytes_from_client"]}
        if "heavy_modules" in row:
            item["heavy_modules"] = row["heavy_modules"]
        if row.get("error"):
            item["failure"] = row["error"]
        item.update({column(k): v for k, v in row.get("metrics", {}).items()
                     if column(k) not in item})
        if row["phase"] == "train":
            item.setdefault("train_time_s", row["time_s"])
        out.append(item)
    return out


@dataclass
class FlowerRun:
    """The outcome of :func:`pytest_collab.flower.run`."""

    status: str                      # "completed" or "failed"
    error: str | None = None         # why it failed (Flower's message, the lost client)
    run_id: int | None = None        # Flower's run id
    flower_status: str | None = None  # what the SuperLink said, e.g. "finished:failed"
    rounds: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)     # {"device", "node_id", "why"}
    nodes: dict[int, str] = field(default_factory=dict)           # node id -> device name
    app_results: list[dict[str, Any]] = field(default_factory=list)  # the app's own rows
    run_time_s: float | None = None
    programs: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def seconds_per_round(self) -> float | None:
        """Mean wall time of the rounds after the first (which pays the warm-up)."""
        times = [r["round_time_s"] for r in self.rounds if "round_time_s" in r and r["round"] > 1]
        return sum(times) / len(times) if times else None

    def run_row(self) -> dict[str, Any]:
        return {"kind": "run", "status": self.status, "error": self.error,
                "flower_run_id": None if self.run_id is None else str(self.run_id), "flower_status": self.flower_status,
                "run_time_s": self.run_time_s,
                "client_names": ",".join(sorted(set(self.nodes.values()))),
                "clients_lost": ",".join(f"{x['device']}(node {x['node_id']})" for x in self.lost)}
