"""Where to split: predict every cut's end-to-end latency from device profiles, pick the best.

The model is a serial pipeline of one query (no batching, no overlap between stages)::

    latency(cut, encoding) = head + encode + transfer + round_trip + decode + tail

``head`` is the edge device's compute up to the cut (a prefix sum of its per-segment
times) plus the fixed cost of calling a program once (``call_ms``, measured on the device
with a trivial artifact), ``tail`` the server's compute after it (a suffix sum) plus the
server's call cost; both split sides run their compute after waiting for the other, so it
is scaled by the device's ``idle_factor`` (its forward after an idle spell over back to
back; the all-on-device baseline runs back to back). Encode is timed on the edge and
decode on the server; the link's throughput and burst come from link_baseline, the round
trip from a probe of the split wire itself. ``transfer`` is ``wire_bytes / link_rate`` on a
link without burst; on a token-bucket link (a shaped uplink, an emulated lab's ``tbf``)
the bytes the bucket holds cross at line rate, and the bucket refills at the link rate
while the rest of the query runs, so per query in the steady state
``transfer = max(0, wire_bytes - min(burst, rate x rest)) / rate``. The two baselines are
cuts too: ``full_offload`` (no head, the raw input crosses) and ``on_device`` (no tail,
nothing crosses, no round trip). Everything here is pure arithmetic on :class:`Profile`
so it is unit-tested on hand-made numbers; the profiles themselves come from
``collab_devicekit.split_profile`` (one pass per device).

With ``objective="energy"`` the plan minimises energy per inference instead, each board at
the mean power it drew during its profile pass (board level, docs/energy.md)::

    energy(cut, encoding) = edge W x latency(cut, encoding) + server W x (decode + tail)

The edge board is on for the whole query (waiting for the answer included, at its busy
power: an upper bound for the wait); the server counts only while it works for the query
(between queries it serves others or idles whichever cut is chosen). See docs/split.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from pytest_collab.testcase import testcase_path

FULL_OFFLOAD = "full_offload"
ON_DEVICE = "on_device"
BASELINES = (FULL_OFFLOAD, ON_DEVICE)
LINK_COMMAND = f"pytest {testcase_path('link_baseline').as_posix()} --lan=PROFILE"
#: the run that records the device profiles a plan needs
PROFILE_COMMAND = f"pytest {testcase_path('split_plan').as_posix()}"
OBJECTIVES = ("latency", "energy")
POWER_FIX = ("give it a power source: a sensor the wrapper reads (RAPL, NVML, hwmon, INA3221, RPi 5 PMIC) or "
             "an external meter in its profile entry, e.g. power_meter: {command: \"ina219-read --watts\"} "
             "(docs/energy.md, 'An external meter')")


class PlanError(ValueError):
    """Profiles that cannot be combined (mismatched cuts, a missing encoding); says which and why."""


@dataclass(frozen=True)
class Boundary:
    """What crossing one cut costs per query for one encoding (medians)."""

    encode_ms: float
    decode_ms: float
    wire_bytes: float


@dataclass(frozen=True)
class DeviceProfile:
    """One device's single profiling pass over the whole model.

    ``segments_ms[k]`` is the compute between cut ``k - 1`` and cut ``k`` (segment 0 starts
    at the input, the last one ends at the output), so there is one more segment than cuts.
    ``boundaries[point][encoding]`` is the encode/decode cost there and its wire bytes;
    ``input`` holds the raw input's (the full-offload baseline).
    """

    device: str
    points: tuple[str, ...]
    segments_ms: tuple[float, ...]
    boundaries: Mapping[str, Mapping[str, Boundary]] = field(default_factory=dict)
    #: mean board power during the profile pass (W), None where the device reports none
    power_w: float | None = None
    #: the fixed cost of one program call on this device (ms), paid by every head and tail
    call_ms: float = 0.0
    #: the whole forward after an idle spell / back to back: a split's head and tail each wait
    #: for the other side between queries, the all-on-device baseline never does
    idle_factor: float = 1.0

    def __post_init__(self) -> None:
        if len(self.segments_ms) != len(self.points) + 1:
            raise PlanError(f"profile of {self.device}: {len(self.segments_ms)} segment times for "
                            f"{len(self.points)} cuts (need cuts + 1)")

    @property
    def total_ms(self) -> float:
        return sum(self.segments_ms)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeviceProfile:
        """From the ``COLLAB_RESULT`` row ``split_profile`` prints, or a results.parquet row
        (where the boundaries are the JSON string ``boundaries_json``)."""
        import json

        raw = row.get("boundaries")
        if not isinstance(raw, Mapping):   # a results row: other rows' columns may hold None here
            raw = json.loads(row["boundaries_json"])
        b = {p: {e: Boundary(*map(float, v)) for e, v in encs.items()} for p, encs in raw.items()}
        points, segments = (json.loads(v) if isinstance(v, str) else v for v in (row["points"], row["segments_ms"]))
        device = str(row.get("role") or row.get("device") or "")
        power, call, idle, hot = (_finite(row.get(k)) for k in ("power_w", "call_ms", "forward_after_idle_ms",
                                                                 "forward_ms"))
        factor = idle / hot if idle and hot else 1.0
        return cls(device, tuple(points), tuple(float(x) for x in segments), b, power, call or 0.0, factor)

    def after_idle(self, ms: float) -> float:
        """``ms`` of this device's compute as a split side runs it (after waiting for the other)."""
        return ms * self.idle_factor


def _finite(value: Any) -> float | None:
    """A float, or None for a missing or NaN cell (rows of other kinds leave it empty)."""
    return float(value) if value is not None and math.isfinite(float(value)) else None


@dataclass(frozen=True)
class Link:
    """A device pair's link: throughput (Mbit/s), round trip (ms), the bytes it lets through at
    line rate after an idle spell (a token bucket's depth; 0 on a link without one), and
    where they came from."""

    mbps: float
    rtt_ms: float
    source: str = ""
    burst_bytes: float = 0.0

    @property
    def bytes_per_ms(self) -> float:
        return self.mbps * 1e6 / 8 / 1e3

    def transfer_ms(self, wire_bytes: float, rest_ms: float) -> float:
        """Time on the wire of one query's ``wire_bytes`` when the rest of the query takes
        ``rest_ms`` (the bucket refills at the link rate meanwhile, up to its depth)."""
        free = min(self.burst_bytes, self.bytes_per_ms * rest_ms)
        return max(0.0, wire_bytes - free) / self.bytes_per_ms


@dataclass(frozen=True)
class Prediction:
    """Predicted latency of one cut with one encoding, term by term (ms)."""

    point: str
    position: int          # 0 = full offload, 1..n = the cuts in execution order, n + 1 = on device
    encoding: str
    head_ms: float
    encode_ms: float
    transfer_ms: float
    rtt_ms: float
    decode_ms: float
    tail_ms: float
    wire_bytes: float
    edge_w: float | None = None     # the devices' board power (W), from their profiles
    server_w: float | None = None

    @property
    def total_ms(self) -> float:
        return self.head_ms + self.encode_ms + self.transfer_ms + self.rtt_ms + self.decode_ms + self.tail_ms

    @property
    def energy_j(self) -> float | None:
        """Board energy per inference (J): the edge's power over the whole query plus the
        server's over its own work (decode + tail); None when a board it needs has no power."""
        server_s = (self.decode_ms + self.tail_ms) / 1e3
        if self.edge_w is None or (server_s and self.server_w is None):
            return None
        return self.edge_w * self.total_ms / 1e3 + (self.server_w or 0.0) * server_s

    def as_row(self) -> dict[str, Any]:
        return {"point": self.point, "position": self.position, "encoding": self.encoding,
                "head_ms": self.head_ms, "encode_ms": self.encode_ms, "transfer_ms": self.transfer_ms,
                "rtt_ms": self.rtt_ms, "decode_ms": self.decode_ms, "tail_ms": self.tail_ms,
                "wire_bytes": self.wire_bytes, "predicted_ms": self.total_ms,
                "edge_w": self.edge_w, "server_w": self.server_w, "predicted_j": self.energy_j}


def score(p: Prediction, objective: str = "latency") -> float:
    """What the plan minimises: predicted ms, or predicted J per inference."""
    if objective == "latency":
        return p.total_ms
    if objective != "energy":
        raise PlanError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if p.energy_j is None:
        missing = [d for d, w in (("edge", p.edge_w), ("server", p.server_w)) if w is None]
        raise no_power(missing)
    return p.energy_j


def no_power(devices: Sequence[str]) -> PlanError:
    """The error of an energy plan over devices that report no power (names them, says the fix)."""
    return PlanError(f"the energy objective needs power on every device, and {', '.join(devices)} "
                     f"report{'s' if len(devices) == 1 else ''} none: {POWER_FIX}")


def _check_pair(edge: DeviceProfile, server: DeviceProfile) -> None:
    if edge.points != server.points:
        raise PlanError(f"the profiles of {edge.device} and {server.device} list different cuts: "
                        "profile both devices with the same model artifact")


def predict(edge: DeviceProfile, server: DeviceProfile, link: Link,
            encodings: Sequence[str] | None = None) -> list[Prediction]:
    """Every cut x encoding plus the two baselines, in position order.

    Encode costs and wire bytes come from the edge profile, decode costs from the server's.
    ``encodings`` defaults to every encoding the edge profiled at the cuts.
    """
    _check_pair(edge, server)
    n = len(edge.points)
    out: list[Prediction] = []
    raw_e, raw_s = edge.boundaries.get("input", {}).get("raw"), server.boundaries.get("input", {}).get("raw")
    if raw_e is not None and raw_s is not None:
        out.append(_one(FULL_OFFLOAD, 0, "raw", 0.0, raw_e, raw_s, server.call_ms + server.after_idle(server.total_ms),
                        link))
    for k, point in enumerate(edge.points):
        head = edge.call_ms + edge.after_idle(sum(edge.segments_ms[:k + 1]))
        tail = server.call_ms + server.after_idle(sum(server.segments_ms[k + 1:]))
        encs_e, encs_s = edge.boundaries.get(point, {}), server.boundaries.get(point, {})
        for enc in (encodings or sorted(encs_e)):
            if enc not in encs_e or enc not in encs_s:
                raise PlanError(f"cut {point!r}: encoding {enc!r} not profiled on "
                                f"{edge.device if enc not in encs_e else server.device}")
            out.append(_one(point, k + 1, enc, head, encs_e[enc], encs_s[enc], tail, link))
    out.append(Prediction(ON_DEVICE, n + 1, "none", edge.call_ms + edge.total_ms, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    return [replace(p, edge_w=edge.power_w, server_w=server.power_w) for p in out]


def _one(point: str, position: int, enc: str, head: float, at_edge: Boundary, at_server: Boundary,
         tail: float, link: Link) -> Prediction:
    if link.mbps <= 0:
        raise PlanError(f"link throughput {link.mbps} Mbit/s: a link must move data (measure it: {LINK_COMMAND})")
    rest = head + at_edge.encode_ms + link.rtt_ms + at_server.decode_ms + tail
    return Prediction(point, position, enc, head, at_edge.encode_ms, link.transfer_ms(at_edge.wire_bytes, rest),
                      link.rtt_ms, at_server.decode_ms, tail, at_edge.wire_bytes)


def best(predictions: Iterable[Prediction], objective: str = "latency") -> Prediction:
    """The best predicted (cut, encoding) by ``objective`` (fastest, or least energy); ties go
    to the earlier position (less on the edge)."""
    preds = list(predictions)
    if not preds:
        raise PlanError("no predictions: the profiles hold no cuts")
    return min(preds, key=lambda p: (score(p, objective), p.position))


def best_per_point(predictions: Iterable[Prediction], objective: str = "latency") -> dict[str, Prediction]:
    """Per cut, its best encoding by ``objective`` (the curve one draws per link rate), in position order."""
    out: dict[str, Prediction] = {}
    for p in sorted(predictions, key=lambda p: (p.position, score(p, objective))):
        out.setdefault(p.point, p)
    return out


def to_measure(predictions: Sequence[Prediction], neighbours: int = 1, objective: str = "latency") -> list[Prediction]:
    """The predicted best, ``neighbours`` cuts either side of it (their best encodings) and both
    baselines: what a run measures to check the prediction. Position order, no repeats."""
    per_point = best_per_point(predictions, objective)
    ordered = list(per_point.values())
    top = best(predictions, objective)
    i = next(j for j, p in enumerate(ordered) if p.point == top.point)
    chosen = {top.point: top}
    for p in ordered[max(0, i - neighbours): i + neighbours + 1]:
        chosen.setdefault(p.point, p)
    for name in BASELINES:
        if name in per_point:
            chosen.setdefault(name, per_point[name])
    return sorted(chosen.values(), key=lambda p: p.position)


def sweep(edge: DeviceProfile, server: DeviceProfile, rtt_ms: float, rates_mbps: Sequence[float],
          encodings: Sequence[str] | None = None, objective: str = "latency",
          burst_bytes: float = 0.0) -> dict[float, Prediction]:
    """The predicted best per link rate (same round trip and burst): where the optimum moves."""
    return {r: best(predict(edge, server, Link(r, rtt_ms, "sweep", burst_bytes), encodings), objective)
            for r in rates_mbps}


@dataclass(frozen=True)
class Check:
    """Predicted vs measured for the cuts a run measured, and whether the partitioner chose well
    (the measured values are ms, or J per inference for the energy objective)."""

    predicted_best: str
    measured_best: str
    predicted_best_measured_ms: float
    measured_best_ms: float
    margin: float
    unit: str = "ms"       # "J" when the objective is energy (the *_ms fields then hold J)

    @property
    def regret(self) -> float:
        """How much faster the measured best was than the predicted best's measurement (0 = right)."""
        return 1.0 - self.measured_best_ms / self.predicted_best_measured_ms if self.predicted_best_measured_ms else 0.0

    @property
    def ok(self) -> bool:
        return self.regret <= self.margin

    def explain(self) -> str:
        return (f"predicted best {self.predicted_best} measured {self.predicted_best_measured_ms:.4g} {self.unit}; "
                f"measured best {self.measured_best} {self.measured_best_ms:.4g} {self.unit} "
                f"({self.regret:.1%} faster, margin {self.margin:.0%})")


def check(measured_ms: Mapping[str, float], predicted_best: str, margin: float, unit: str = "ms") -> Check:
    """Compare the measured latencies (point -> ms; or J per inference) with the prediction's choice."""
    if predicted_best not in measured_ms:
        raise PlanError(f"the predicted best {predicted_best!r} was not measured (measured: {sorted(measured_ms)})")
    winner = min(measured_ms, key=lambda k: measured_ms[k])
    return Check(predicted_best, winner, measured_ms[predicted_best], measured_ms[winner], margin, unit)


def relative_errors(pairs: Iterable[tuple[float, float]]) -> list[float]:
    """|predicted - measured| / measured of each (predicted, measured) pair."""
    return [abs(p - m) / m for p, m in pairs if m > 0]
