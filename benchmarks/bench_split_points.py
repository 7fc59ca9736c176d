"""Time to list and export every cut point of each model the split library supports.

Per model (random init, one 3x224x224 example, one torch thread): graph capture, listing
every cut point with its crossing tensors, cutting every point into head/tail modules,
and exporting head.pt2 + tail.pt2 (+ sidecars; the programs are assembled from the
captured graph, the time is mostly torch.export.save writing the weights). By default the
export is timed on ``--sample`` points spread over the model and the all-points figure is
that median times the number of points, marked "projected"; ``--all`` exports every
point and measures it.

    .venv/bin/python benchmarks/bench_split_points.py [--models resnet18,vit_b_16] [--sample 3] [--all]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_collab import split  # noqa: E402

MODELS = ("resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "vgg11", "vit_b_16")


def bench(name: str, sample: int, every: bool, out: Path) -> dict[str, object]:
    model = split.load_model(name)
    x = split.example((3, 224, 224))
    t0 = time.perf_counter()
    captured = split.capture(model, x)
    t1 = time.perf_counter()
    analysis = split.analyse(captured)
    points = analysis.listed()
    t2 = time.perf_counter()
    for p in points:
        split.cut(analysis, p)
    t3 = time.perf_counter()
    chosen = points if every else split.spread(points, sample)
    per = []
    for p in chosen:
        s = split.cut(analysis, p)
        t = time.perf_counter()
        split.export(s, out / name / p.name)
        per.append(time.perf_counter() - t)
    median = statistics.median(per)
    return {"model": name, "points": len(points), "multi": sum(len(p.boundary) > 1 for p in points),
            "capture": t1 - t0, "list": t2 - t1, "cut_all": t3 - t2, "export_each": median,
            "export_all": sum(per) if every else median * len(points), "measured": every}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all six)")
    ap.add_argument("--sample", type=int, default=3, help="points exported per model when not --all (default: 3)")
    ap.add_argument("--all", action="store_true", help="export every point (minutes per model)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rows.append(bench(name, args.sample, args.all, Path(tmp)))
            r = rows[-1]
            print(f"  {name}: {r['points']} points captured in {r['capture']:.1f}s", flush=True)
    print(f"{'model':<20} {'points':>6} {'multi':>5} {'capture s':>9} {'list s':>7} {'cut all s':>9} "
          f"{'export/pt s':>11} {'export all s':>13}")
    for r in rows:
        mark = "" if r["measured"] else " (projected)"
        print(f"{r['model']:<20} {r['points']:>6} {r['multi']:>5} {r['capture']:>9.2f} {r['list']:>7.3f} "
              f"{r['cut_all']:>9.2f} {r['export_each']:>11.2f} {r['export_all']:>13.1f}{mark}")
    print("points: module ends (collab split points MODEL); multi: cuts sending more than one tensor; "
          "list = find every point and its crossing tensors in the captured graph")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
