"""How far the partitioner's prediction is from measurement: median |predicted - measured| /
measured over the cuts a split_plan run measured (best, neighbours, baselines), per run and
over all runs. Target (issue 13): <= 15 % at two link rates.

Runs link_baseline then split_plan on every lab profile given (use profiles whose links
differ, e.g. two emulated labs shaped to 5 and 100 Mbit/s), or summarises runs made before:

    .venv/bin/python benchmarks/bench_split_plan.py --lan local [--lan emulated ...]
    .venv/bin/python benchmarks/bench_split_plan.py --runs reports/20261202-... reports/...
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.15


def run_pair(lan: str, out: Path, extra: list[str]) -> Path:
    """link_baseline then split_plan on ``lan``; the split_plan run folder."""
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--lan={lan}", f"--collab-out={out}"]
    subprocess.run([*base, "testcases/link_baseline", "--link-sizes=1,1024", "-k", "grpc"], cwd=ROOT, check=True)
    subprocess.run([*base, "testcases/split_plan", *extra], cwd=ROOT)   # a wrong choice fails; still measured
    return (out / "latest").resolve()


def summarise(run: Path) -> list[float]:
    import pandas as pd

    df = pd.read_parquet(run / "results.parquet")
    m = df[(df.get("testcase") == "split_plan") & (df["kind"] == "measured")]
    if not len(m):
        print(f"{run}: no measured cuts (did split_plan run?)")
        return []
    errors = [abs(p - x) / x for p, x in zip(m["predicted_ms"], m["measured_ms"]) if x > 0]
    v = df[df["kind"] == "verdict"]
    verdict = v.iloc[-1] if len(v) else None
    print(f"\n{run.name}: link {m['link_mbps'].iloc[0]:g} Mbit/s ({m['link_source'].iloc[0]}), "
          f"median |error| {statistics.median(errors):.1%}")
    if verdict is not None:
        print(f"  predicted best {verdict['predicted_best']}, measured best {verdict['measured_best']}, "
              f"regret {verdict['regret']:.1%}")
    for row in m.itertuples():
        swapped = f"  with its own compute {row.swapped_error:+.1%}" if "swapped_error" in m else ""
        print(f"  {row.point:<16} {row.encoding:<5} predicted {row.predicted_ms:8.2f} ms  "
              f"measured {row.measured_ms:8.2f} ms  error {row.error:+.1%}{swapped}")
    if verdict is not None and "edge_drift" in verdict:
        print(f"  compute drift (measured baseline / profiled forward): edge {verdict['edge_drift']:.2f}, "
              f"server {verdict['server_drift']:.2f}")
    prof = df[df["kind"] == "profile"]
    for row in prof.itertuples():
        idle = getattr(row, "forward_after_idle_ms", float("nan"))
        print(f"  profile {row.role:<7} forward {row.forward_ms:6.2f} ms, after idle {idle:6.2f} ms, "
              f"call {getattr(row, 'call_ms', float('nan')):.3f} ms")
    wire = df[df["kind"] == "wire"] if "kind" in df else df.iloc[:0]
    if len(wire):
        print(f"  round trip of the split wire {wire['rtt_ms'].iloc[-1]:.3f} ms")
    if "swapped_error" in m:   # a diagnostic: the error left once each cut's own compute is used
        print(f"  median |error| with each cut's own measured compute (link + codec terms only): "
              f"{m['swapped_error'].abs().median():.1%}")
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lan", action="append", default=[], help="lab profile to run on (repeat)")
    ap.add_argument("--runs", nargs="*", type=Path, default=[], help="existing split_plan run folders")
    ap.add_argument("--model", default="mobilenet_v3_small")
    ap.add_argument("--input", default="3,64,64")
    args = ap.parse_args()
    runs = list(args.runs)
    extra = ["--split-model", args.model, "--split-plan-input", args.input]
    for lan in args.lan or ([] if runs else ["local"]):
        runs.append(run_pair(lan, Path(tempfile.mkdtemp(prefix=f"bench-plan-{lan}-")), extra))
    errors = [e for run in runs for e in summarise(run)]
    if errors:
        med = statistics.median(errors)
        print(f"\nall runs: median |predicted - measured| / measured = {med:.1%} over {len(errors)} cuts "
              f"(target <= {TARGET:.0%}: {'met' if med <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
