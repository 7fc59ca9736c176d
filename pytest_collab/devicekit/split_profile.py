"""Profile a whole model on this device in one pass: compute per segment between cuts, and
what each cut's boundary costs to encode, decode and send, per encoding.

    python -m collab_devicekit.split_profile --model-artifact FULL.pt2 --cuts cuts.json \\
        --inputs images.npy [--samples 20] [--encodings fp32,fp16,int8] [--device rpi-0]

``FULL.pt2`` is the unsplit model exported with ``torch.export``; ``cuts.json`` (written by
the controller, :mod:`pytest_collab.split.profile`) lists the cuts in execution order by
the graph node each ends at, and the nodes crossing each. The model runs node by node
(``torch.fx.Interpreter``) on every sample, once, adding each node's time to its segment:
a plan for every cut costs one run per sample, not one run per cut. The interpreter's
overhead is measured against the plain forward and the segments scaled to that forward.
Prints one ``COLLAB_RESULT`` row: ``segments_ms`` (medians, without the program's fixed call
cost), ``call_ms`` (that cost: a trivial artifact called like a head or tail, given
``--probe-artifact``), ``boundaries`` (per point and
encoding ``[encode_ms, decode_ms, wire_bytes]``, ``input`` = the raw image), timings, and
``t_start``/``t_end``: the busy window, over which the board's power is the device's.
Needs numpy, blosc2 and torch.
"""
from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .emit import emit
from .needs import require

PROGRAM = "split_profile"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m collab_devicekit.{PROGRAM}",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model-artifact", type=Path, required=True, help="the whole model's .pt2")
    ap.add_argument("--cuts", type=Path, required=True, help="cuts.json written by the controller")
    ap.add_argument("--inputs", type=Path, required=True, help=".npy of input samples (axis 0)")
    ap.add_argument("--samples", type=int, default=20, help="profiled samples (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured runs first (default 3)")
    ap.add_argument("--encodings", default="fp32,fp16,int8", help="comma-separated (default fp32,fp16,int8)")
    ap.add_argument("--codec-repeats", type=int, default=9, help="encode/decode timings per cut (default 9)")
    ap.add_argument("--probe-artifact", type=Path, default=None,
                    help="a trivial exported program (with sidecar): its call time is the fixed cost "
                         "of running a head or tail once, added to both sides of a split")
    ap.add_argument("--device", default="", help="label recorded with the row")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, 0 = torch's default")
    return ap.parse_args(argv)


def _median(xs: Sequence[float]) -> float:
    from .stats import median

    return median(xs)


def is_compute(node: Any) -> bool:
    """Whether a node is the model's work. Parameter reads (an export lists every one first),
    inputs, the output and the export's input guards cost the interpreter a Python call each
    but nothing in a compiled forward (the guards are the program's call cost, ``call_ms``):
    timed, 246 parameter reads put 40 % of mobilenet_v3_small's time before its first op."""
    if node.op in ("placeholder", "get_attr", "output"):
        return False
    return not (node.op == "call_module" and str(node.target).startswith("_guards"))


class Profiler:
    """Runs a GraphModule node by node, timing every node into the segment it belongs to."""

    def __init__(self, gm: Any, cut_nodes: Sequence[str], keep: set[str]) -> None:
        import torch.fx

        nodes = list(gm.graph.nodes)
        index = {n.name: i for i, n in enumerate(nodes)}
        missing = [c for c in [*cut_nodes, *keep] if c not in index]
        if missing:
            raise SystemExit(f"{PROGRAM}: the model artifact has no node(s) {missing[:5]}: cuts.json was made "
                             "for another export of the model; let the controller write both again")
        cut_pos = [index[c] for c in cut_nodes]
        if cut_pos != sorted(cut_pos):
            raise SystemExit(f"{PROGRAM}: cuts.json lists cuts out of execution order")
        self.segment = {n.name: bisect.bisect_left(cut_pos, i) for i, n in enumerate(nodes)}
        self.calls = [0] * (len(cut_nodes) + 1)
        for n in nodes:
            if n.op in ("call_function", "call_method", "call_module"):
                self.calls[self.segment[n.name]] += 1
        self.keep = keep
        self.kept: dict[str, Any] = {}
        self.times = [0.0] * (len(cut_nodes) + 1)
        profiler = self

        untimed = {n.name for n in nodes if not is_compute(n)}

        class _Timed(torch.fx.Interpreter):
            def run_node(self, n: Any) -> Any:
                if n.name in untimed:
                    return super().run_node(n)
                t0 = time.perf_counter()
                out = super().run_node(n)
                profiler.times[profiler.segment[n.name]] += time.perf_counter() - t0
                if n.name in profiler.keep:
                    profiler.kept[n.name] = out
                return out

        self.interp = _Timed(gm)

    def run(self, x: Any) -> list[float]:
        """Seconds per segment for one input batch."""
        self.times = [0.0] * len(self.times)
        self.interp.run(x)
        return list(self.times)


def codec_costs(arrays: Sequence[Any], names: Sequence[str], encodings: Sequence[str],
                repeats: int) -> dict[str, list[float]]:
    """Per encoding ``[encode_ms, decode_ms, wire_bytes]`` of sending ``arrays`` in one query,
    with the wire's default compression (what split_head does per query)."""
    import numpy as np

    from . import codec

    comp = codec.Compression()
    out: dict[str, list[float]] = {}
    dtypes = [(n, a.dtype) for n, a in zip(names, arrays)]
    for enc in encodings:
        try:
            per_tensor = codec.plan(dtypes, enc)
        except codec.CodecError:
            continue
        enc_s, dec_s, wire = [], [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            parts = codec.pack_all(arrays, per_tensor, comp)
            t1 = time.perf_counter()
            for data, meta in parts:
                codec.unpack(data, meta)
            t2 = time.perf_counter()
            enc_s.append(t1 - t0)
            dec_s.append(t2 - t1)
            wire = sum(len(d) for d, _ in parts)
        out[enc] = [_median(enc_s) * 1e3, _median(dec_s) * 1e3, float(wire)]
    _ = np  # numpy is what the arrays are; imported to fail early on a device without it
    return out


def call_overhead(probe: Path | None, samples: int, threads: int) -> tuple[float, float]:
    """``(call_ms, module_ms)``: a trivial artifact called the way head and tail programs call
    theirs (numpy in, ``Exported``, numpy out), and its bare module call. Every program of a
    split pays the first once per query; the plain forward holds the second once."""
    if probe is None:
        return 0.0, 0.0
    import torch

    from .exported import Exported

    prog = Exported(probe, PROGRAM, threads)
    arrays = prog.zeros(1)
    tensor = torch.from_numpy(arrays[0])

    def timed(call: Any, arg: Any) -> float:
        for _ in range(5):
            call(arg)
        times = []
        for _ in range(max(samples, 30)):
            t0 = time.perf_counter()
            call(arg)
            times.append(time.perf_counter() - t0)
        return _median(times) * 1e3

    wrapped = timed(prog, arrays)
    with torch.inference_mode():
        bare = timed(prog.module, tensor)
    return wrapped, bare


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require(PROGRAM, "numpy", "blosc2", "torch")
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    for p in (args.model_artifact, args.cuts, args.inputs, *([args.probe_artifact] if args.probe_artifact else [])):
        if not p.is_file():
            raise SystemExit(f"{PROGRAM}: {p} is missing; the controller ships it before starting this program")
    spec = json.loads(args.cuts.read_text())
    points = [c["name"] for c in spec["points"]]
    crossing = {c["name"]: list(c["boundary"]) for c in spec["points"]}
    gm = torch.export.load(str(args.model_artifact)).module()
    prof = Profiler(gm, [c["node"] for c in spec["points"]], {n for b in crossing.values() for n in b})
    images = np.load(args.inputs)
    n = min(args.samples, len(images))
    batches = [torch.from_numpy(np.ascontiguousarray(images[i:i + 1])) for i in range(n)]
    per_segment: list[list[float]] = [[] for _ in prof.times]
    interp_s, plain_s, paced_s = [], [], []
    t_start = time.time()  # the busy window (device clock): the controller weighs board power over it
    with torch.inference_mode():
        # Node by node first, then the plain forward back to back, each after its own warm-up:
        # the way a head or tail runs its queries (alternating the two let the plain forward
        # run right after the interpreter's Python churn, which no measured query does).
        for x in batches[: args.warmup] or batches[:1]:
            prof.run(x)
        for x in batches:
            times = prof.run(x)
            interp_s.append(sum(times))
            for k, t in enumerate(times):
                per_segment[k].append(t)
        for x in batches[: args.warmup] or batches[:1]:
            gm(x)
        for x in batches:
            t0 = time.perf_counter()
            gm(x)
            plain_s.append(time.perf_counter() - t0)
        # The same forward after an idle spell as long as itself (2-50 ms): a split's head
        # waits for the tail's answer and the tail for the next request between queries, and a
        # core that idled runs the next forward with cold caches (and, on boards that scale
        # their clocks, slower).
        gap = min(max(_median(plain_s), 0.002), 0.05)
        for x in batches:
            time.sleep(gap)
            t0 = time.perf_counter()
            gm(x)
            paced_s.append(time.perf_counter() - t0)
    call_ms, module_ms = call_overhead(args.probe_artifact, n, args.threads)
    raw = [_median(s) * 1e3 for s in per_segment]
    forward_ms, interp_ms = _median(plain_s) * 1e3, _median(interp_s) * 1e3
    # The interpreter's Python overhead is spread like the work (a constant per node turns
    # noisy short segments negative): scale the segments so they add up to the plain forward
    # less its one module call (that fixed cost is call_ms, paid once per program per query).
    work_ms = max(forward_ms - module_ms, 0.5 * forward_ms)
    scale = work_ms / sum(raw) if sum(raw) > 0 else 1.0
    segments = [t * scale for t in raw]
    encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    boundaries: dict[str, Any] = {"input": codec_costs([images[:1]], ["image"], ["raw"], args.codec_repeats)}
    for name in points:
        arrays = [prof.kept[t].detach().numpy() for t in crossing[name]]
        boundaries[name] = codec_costs(arrays, crossing[name], encodings, args.codec_repeats)
    t_end = time.time()
    row = {"program": PROGRAM, "device": args.device, "model": spec.get("model", ""), "points": points,
           "segments_ms": segments, "segments_raw_ms": raw, "forward_ms": forward_ms,
           "interpreter_ms": interp_ms, "scale": scale,
           "call_ms": call_ms, "module_call_ms": module_ms, "forward_after_idle_ms": _median(paced_s) * 1e3,
           "samples": n, "batch": 1,
           "boundaries": boundaries, "torch_threads": torch.get_num_threads(),
           "t_start": t_start, "t_end": t_end}
    print(f"{PROGRAM} {args.device}: {len(points)} cuts, forward {forward_ms:.2f} ms, node by node "
          f"{interp_ms:.2f} ms over {n} samples", flush=True)
    emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
