"""The controller side of profiling for the partitioner: what the devices profile, and the link.

:func:`prepare` exports the whole model once (``full.pt2``, torch.export, dynamic batch) and
writes ``cuts.json``: the cuts in execution order, each named by the graph node it ends at
and the nodes that cross it. ``collab_devicekit.split_profile`` runs that artifact node by
node on a device and reports per-segment compute and per-cut codec costs, which
:class:`pytest_collab.split.plan.DeviceProfile` reads. :func:`link_from_reports` finds the
link measurement (link_baseline) the prediction needs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from pytest_collab.split.plan import LINK_COMMAND, PROFILE_COMMAND, Link


@dataclass(frozen=True)
class ProfileInputs:
    """Files a device needs to profile, and the cuts they describe."""

    full: Path
    cuts: Path
    inputs: Path
    points: tuple[str, ...]
    #: a trivial artifact (one elementwise op, dynamic batch) whose call time on a device is
    #: the fixed cost of running any head or tail program once (its call overhead)
    probe: Path | None = None


def select(analysis: Any, depth: int | None = 2, names: Sequence[str] | None = None) -> list[Any]:
    """The cut points to profile: ``names`` resolved, else every module end up to ``depth``."""
    if names:
        pts = {analysis.resolve(n).index: analysis.resolve(n) for n in names}
        return [pts[i] for i in sorted(pts)]
    return list(analysis.listed(depth=depth))


def prepare(net: Any, images: Any, outdir: str | Path, depth: int | None = 2,
            names: Sequence[str] | None = None, model_name: str = "") -> ProfileInputs:
    """Export ``net`` (already wrapped with its preprocessing) whole, and the cuts of ``depth``.

    Node names of a fresh ``torch.export`` of the same module match the capture's, which the
    device checks (a mismatch is a clear error there, not a wrong profile).
    """
    import numpy as np
    import torch

    from pytest_collab.split.capture import capture
    from pytest_collab.split.points import analyse

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(np.ascontiguousarray(images[:2]))
    analysis = analyse(capture(net, x, method="export"))
    points = select(analysis, depth, names)
    full = out / "full.pt2"
    if not full.exists():
        batch = torch.export.Dim("batch")
        with torch.no_grad():
            program = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
        tmp = out / "full.tmp.pt2"
        torch.export.save(program, str(tmp))
        tmp.replace(full)
    cuts = out / "cuts.json"
    cuts.write_text(json.dumps({"model": model_name or type(net).__name__, "points": [
        {"name": p.name, "node": p.node, "boundary": [t.name for t in p.boundary]} for p in points]}, indent=1))
    inputs = out / "inputs.npy"
    np.save(inputs, np.asarray(images))
    return ProfileInputs(full, cuts, inputs, tuple(p.name for p in points), export_probe(out / "probe.pt2"))


def export_probe(path: Path) -> Path:
    """The call-overhead probe: ``x -> x + 1`` on a small float32 batch, exported with a
    dynamic batch like every head and tail, with its sidecar. Written once per folder."""
    import torch

    from pytest_collab.devicekit.artifact import spec, write_sidecar

    if not path.exists():
        class _Probe(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + 1

        x = torch.zeros(2, 8)
        with torch.no_grad():
            program = torch.export.export(_Probe(), (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        tmp = path.with_name(f"probe.{os.getpid()}.tmp.pt2")
        torch.export.save(program, str(tmp))
        write_sidecar(path, [spec("x", (None, 8), "float32")], [spec("y", (None, 8), "float32")])
        tmp.replace(path)
    return path


def profiles_from_results(results: Any, edge: str = "rpi", server: str = "server") -> tuple[Any, Any, Link | None]:
    """(edge profile, server profile, the link the run planned with or None) from a run's
    results.parquet DataFrame, as split_plan recorded them (``kind == "profile"``)."""
    from pytest_collab.split.plan import DeviceProfile, PlanError

    if "kind" not in results:
        raise PlanError(f"this run holds no split_plan profiles: run `{PROFILE_COMMAND}` first")
    rows = results[results["kind"] == "profile"]
    found = {}
    for role in (edge, server):
        mine = rows[rows["role"] == role]
        if not len(mine):
            raise PlanError(f"this run holds no {role!r} profile (roles: {sorted(set(rows['role']))}): "
                            f"run `{PROFILE_COMMAND}` first")
        found[role] = DeviceProfile.from_row(mine.iloc[-1].to_dict())
    link = None
    planned = results[(results["kind"] == "predicted") & (results.get("measured_link") == True)]  # noqa: E712
    if len(planned):
        first = planned.iloc[0]
        burst = first.get("link_burst_bytes")
        link = Link(float(first["link_mbps"]), float(first["link_rtt_ms"]), str(first.get("link_source", "")),
                    float(burst) if burst is not None and burst == burst else 0.0)
    return found[edge], found[server], link


def link_from_rows(rows: Any, transport: str = "grpc") -> Link | None:
    """Throughput, round trip and burst from link_baseline rows (a DataFrame): round trip = the
    smallest message's median RTT; throughput = the slope between the smallest and largest
    message (so the round trip is not counted twice), else the largest message's rate; burst =
    what the largest message saves after an idle spell (``rtt_idle_p50_ms``), in bytes at that
    rate (0 when idle is no faster, or the rows predate the idle probe)."""
    if rows is None or "throughput_mbps" not in rows or "size_bytes" not in rows:
        return None
    if "testcase" in rows:
        rows = rows[rows["testcase"] == "link_baseline"]
    if "transport" in rows:
        rows = rows[rows["transport"] == transport]
    if not len(rows):
        return None
    rows = rows.sort_values("size_bytes")
    small, large = rows.iloc[0], rows.iloc[-1]
    rtt = float(small["rtt_p50_ms"])
    extra_ms = float(large["rtt_p50_ms"]) - rtt
    extra_bytes = float(large["size_bytes"]) - float(small["size_bytes"])
    if extra_ms > 0 and extra_bytes > 0:
        mbps = extra_bytes * 8 / (extra_ms / 1e3) / 1e6
    else:
        mbps = float(large["throughput_mbps"])
    idle = large.get("rtt_idle_p50_ms")
    saved_ms = float(large["rtt_p50_ms"]) - float(idle) if idle is not None and idle == idle else 0.0
    if saved_ms < 0.05 * float(large["rtt_p50_ms"]):   # within noise: a link without a bucket
        saved_ms = 0.0
    burst = min(saved_ms * mbps * 1e3 / 8, float(large["size_bytes"]))
    return Link(mbps, rtt, f"link_baseline {transport}", burst)


def link_from_reports(reports: str | Path, profile: str, transport: str = "grpc") -> tuple[Link | None, str]:
    """The newest link_baseline measurement on the same lab profile under ``reports`` (the
    running session's own rows included), and a sentence saying where it came from or which
    command measures it."""
    try:
        import pandas as pd
    except ImportError:
        return None, "pandas is missing (pip install 'pytest-collab[report]')"
    from pytest_collab.results.assemble import recorded_so_far
    from pytest_collab.results.rundir import RunDir, is_run_id

    for folder in sorted((p for p in Path(reports).glob("*") if is_run_id(p.name)), reverse=True):
        try:
            info, rows = recorded_so_far(RunDir(folder))
            if info["profile"]["name"] != profile:
                continue
            link = link_from_rows(pd.DataFrame(rows), transport)
        except Exception:  # noqa: BLE001 - a half-written or foreign run is no baseline
            continue
        if link is not None:
            return replace(link, source=f"{link.source} in {folder.name}"), f"from {folder}"
    return None, (f"no link measurement for lab profile {profile!r} under {reports}: measure it with "
                  f"`{LINK_COMMAND.replace('PROFILE', profile)}` (or run it in the same session first)")
