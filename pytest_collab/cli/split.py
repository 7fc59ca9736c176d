"""``collab split points MODEL`` / ``export MODEL POINT OUTDIR`` / ``plan RUN_DIR``: cut any model, choose a cut."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

CAPTURES = ("auto", "export", "fx")


def _shape(spec: Any) -> str:
    return "x".join("N" if s == -1 else str(s) for s in spec.shape if s != -1) or "scalar"


def _load(args: argparse.Namespace) -> tuple[Any, Any, tuple[int, ...]]:
    """(model, analysis, input shape) from the command line."""
    from pytest_collab import split
    from pytest_collab.split.models import DEFAULT_INPUT, parse_shape

    shape = parse_shape(args.input) if args.input else DEFAULT_INPUT
    print(f"collab split: building {args.model}, capturing its graph on a {'x'.join(map(str, shape))} input ...",
          file=sys.stderr, flush=True)
    model = split.load_model(args.model, weights=args.weights)
    analysis = split.analyse(split.capture(model, split.example(shape), method=args.capture))
    return model, analysis, shape


def point_rows(points: Sequence[Any], input_bytes: int) -> list[dict[str, Any]]:
    """One row per point: what ``collab split points`` prints (and --json writes)."""
    return [{"index": p.index, "name": p.name, "tensors": len(p.boundary),
             "shapes": [_shape(t) for t in p.boundary], "dtypes": [t.dtype for t in p.boundary],
             "fp32_bytes": p.fp32_bytes, "vs_input": p.fp32_bytes / input_bytes, "aliases": list(p.aliases),
             "node": p.node} for p in points]


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Aligned text lines for ``rows`` of :func:`point_rows`."""
    name_w = max([len("point"), *(len(r["name"]) for r in rows)])
    shape_w = max([len("shapes"), *(len(" + ".join(r["shapes"])) for r in rows)])
    lines = [f"{'op':>4}  {'point':<{name_w}}  {'n':>2}  {'shapes':<{shape_w}}  {'fp32 bytes':>11}  {'x input':>8}"]
    for r in rows:
        dtypes = {d for d in r["dtypes"] if d != "float32"}
        note = f"  ({', '.join(sorted(dtypes))})" if dtypes else ""
        lines.append(f"{r['index']:>4}  {r['name']:<{name_w}}  {r['tensors']:>2}  "
                     f"{' + '.join(r['shapes']):<{shape_w}}  {r['fp32_bytes']:>11,}  {r['vs_input']:>8.2f}{note}")
    return lines


def cmd_points(args: argparse.Namespace) -> int:
    """Every cut point of MODEL in execution order: the tensors crossing it, their shapes,
    bytes per sample sent as fp32, and that against the uint8 input image (full offload)."""
    from pytest_collab import split

    _, analysis, shape = _load(args)
    pts = analysis.listed(nodes=args.nodes, depth=args.depth)
    if args.auto:
        pts = split.spread(pts, args.auto)
    input_bytes = 1
    for s in shape:
        input_bytes *= s
    rows = point_rows(pts, input_bytes)
    if args.json:
        print(json.dumps({"model": args.model, "input": list(shape), "input_uint8_bytes": input_bytes,
                          "capture": analysis.captured.method, "points": rows}, indent=1))
        return 0
    what = "every op" if args.nodes else "module ends" + (f" to depth {args.depth}" if args.depth else "")
    print(f"{args.model}: input {'x'.join(map(str, shape))} uint8 = {input_bytes:,} bytes/sample; "
          f"captured with torch.{analysis.captured.method}; {len(rows)} cut points ({what})")
    print("\n".join(table(rows)))
    multi = sum(1 for r in rows if r["tensors"] > 1)
    print(f"{multi} of {len(rows)} cuts send more than one tensor (inside a block: branch + skip). "
          "bytes are per sample; 'x input' = fp32 bytes / uint8 input bytes.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Cut MODEL at POINT and write head.pt2 / tail.pt2 (+ .pt2.json sidecars) under OUTDIR."""
    from pytest_collab import split

    _, analysis, _ = _load(args)
    s = split.cut(analysis, args.point)
    paths = split.export(s, args.outdir)
    print(f"{args.model} cut at {s.point.name} ({len(s.boundary)} tensor(s): "
          f"{', '.join(_shape(t) for t in s.boundary)})")
    for p in (paths.head, paths.head_sidecar, paths.tail, paths.tail_sidecar):
        print(f"  {p}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """The predicted best cut per link rate, from the device profiles a split_plan run recorded
    (RUN_DIR/results.parquet); the round trip is the run's link measurement unless --rtt-ms.
    --objective energy chooses by board energy per inference (the profiles' power)."""
    import pandas as pd

    from pytest_collab.split import plan
    from pytest_collab.split.plan import PROFILE_COMMAND
    from pytest_collab.split.profile import profiles_from_results

    path = args.run_dir / "results.parquet"
    if not path.is_file():
        raise SystemExit(f"collab: error: {path} is missing: give a run folder of `{PROFILE_COMMAND}`")
    try:
        edge, server, link = profiles_from_results(pd.read_parquet(path))
        rates = [float(r) for r in args.link_mbps.split(",") if r.strip()]
    except (plan.PlanError, ValueError) as exc:
        raise SystemExit(f"collab: error: {exc}") from None
    rtt = args.rtt_ms if args.rtt_ms is not None else (link.rtt_ms if link else 0.0)
    where = "--rtt-ms" if args.rtt_ms is not None else (link.source if link else "none in the run: 0 assumed")
    if args.objective == "energy":
        unpowered = [p.device for p in (edge, server) if p.power_w is None]
        if unpowered:
            raise SystemExit(f"collab: error: {plan.no_power(unpowered)}; then run `pytest testcases/split_plan` again")
    energy = args.objective == "energy"
    unit = "J" if energy else "ms"
    burst = link.burst_bytes if link else 0.0
    print(f"{args.run_dir}: {len(edge.points)} cuts; round trip {rtt:.3f} ms ({where})"
          + (f", burst {burst / 1024:.0f} KiB" if burst else "") + f"; objective {args.objective}"
          + (f" (board power: {edge.device} {edge.power_w:.2f} W, {server.device} {server.power_w:.2f} W)"
             if energy else ""))
    print(f"{'Mbit/s':>8}  {'best cut':<20} {'encoding':<8} {'predicted ' + unit:>12}  "
          f"{'on_device':>9}  {'full_offload':>12}" + (f"  {'latency ms':>10}" if energy else ""))
    for rate in rates:
        preds = plan.predict(edge, server, plan.Link(rate, rtt, "--link-mbps", burst))
        top, per = plan.best(preds, args.objective), plan.best_per_point(preds, args.objective)
        fmt = "{:.4f}" if energy else "{:.2f}"
        base = [fmt.format(plan.score(per[b], args.objective)) if b in per else "-" for b in plan.BASELINES]
        print(f"{rate:>8g}  {top.point:<20} {top.encoding:<8} {fmt.format(plan.score(top, args.objective)):>12}  "
              f"{base[1]:>9}  {base[0]:>12}" + (f"  {top.total_ms:>10.2f}" if energy else ""))
    return 0


def plan_objectives() -> tuple[str, ...]:
    from pytest_collab.split.plan import OBJECTIVES  # light: plan.py imports nothing heavy

    return OBJECTIVES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a torchvision classification model name or pkg.module:Attr")
    p.add_argument("--input", default=None, metavar="C,H,W", help="input shape without the batch (default: 3,224,224)")
    p.add_argument("--weights", default=None, metavar="FILE", help="a local state_dict to load (default: random init)")
    p.add_argument("--capture", choices=CAPTURES, default="auto",
                   help="graph capture: torch.export, torch.fx, or export then fx (default: auto)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``split`` sub-command group to the ``collab`` parser."""
    group = subparsers.add_parser("split", help="list cut points of any torch model, export head and tail",
                                  description="Split inference for any torch model (docs/split.md).")
    sub = group.add_subparsers(title="split commands", metavar="COMMAND")
    p = sub.add_parser("points", help="every cut point with the tensors that cross it", description=cmd_points.__doc__)
    _common(p)
    p.add_argument("--nodes", action="store_true", help="list every op, not only module ends")
    p.add_argument("--depth", type=int, default=None, metavar="N", help="only modules up to N levels deep")
    p.add_argument("--auto", type=int, default=0, metavar="K", help="only the K points 'auto' would choose")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_points)
    e = sub.add_parser("export", help="write head.pt2 and tail.pt2 for one cut", description=cmd_export.__doc__)
    _common(e)
    e.add_argument("point", metavar="POINT", help="a point name from `collab split points`")
    e.add_argument("outdir", metavar="OUTDIR", type=Path, help="folder for the artifacts")
    e.set_defaults(func=cmd_export)
    pl = sub.add_parser("plan", help="predicted best cut per link rate from a split_plan run's profiles",
                        description=cmd_plan.__doc__)
    pl.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run folder, e.g. reports/latest")
    pl.add_argument("--link-mbps", default="10,100,1000", metavar="R1,R2",
                    help="link rates in Mbit/s (default 10,100,1000)")
    pl.add_argument("--rtt-ms", type=float, default=None, help="round trip (default: the run's link measurement)")
    pl.add_argument("--objective", choices=plan_objectives(), default="latency",
                    help="minimise latency per query, or board energy per inference (needs the run's profiles "
                         "to hold power: docs/energy.md)")
    pl.set_defaults(func=cmd_plan)
    group.set_defaults(func=lambda a: group.print_help() or 2)
