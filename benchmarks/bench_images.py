"""Cold against warm build of split_resnet's runtime layer (code + wrapper), side by side.

Run: ``.venv/bin/python benchmarks/bench_images.py [--testcase testcases/split_resnet] [--repeat 3]``.
Needs a docker engine; the base comes from ``collab images bootstrap`` (cached) when the
engine has no upstream base. Target: a warm build (nothing changed) under 3 s with
nothing rebuilt.

Scenarios, each on the same test case:
- ``cold``: the runtime image removed first, then built without docker's step cache;
- ``docker-cache``: the runtime tag removed but docker's step cache kept (e.g. an image
  pruned by tag only): every step a cache hit, the tag made again;
- ``warm``: nothing changed: hash the inputs, find the three tags, build nothing.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pytest_collab.containers.engines import local_client
from pytest_collab.containers.images import build_layer, build_testcase, layer_specs, resolve_base_from

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testcase", default=str(ROOT / "testcases" / "split_resnet"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    client = local_client()
    quiet = lambda line: None  # noqa: E731
    base_from = resolve_base_from(client, "amd64", "auto", print)
    build_testcase(Path(args.testcase), client=client, base_from=base_from, progress=quiet)
    runtime = layer_specs(Path(args.testcase), "amd64", base_from=base_from)[2]

    def cold() -> float:
        client.images.remove(runtime.tag, force=True)          # also prunes its untagged parents
        started = time.perf_counter()
        result = build_layer(client, runtime, progress=quiet, nocache=True)
        assert result.built and result.cached_steps == 0, result
        return time.perf_counter() - started

    def docker_cache() -> float:
        client.images.remove(runtime.tag, force=True, noprune=True)
        started = time.perf_counter()
        result = build_layer(client, runtime, progress=quiet)
        # ARG and FROM never report a cache hit; the last step (the removed image) runs again
        assert result.built and result.cached_steps == result.steps - 3, result
        return time.perf_counter() - started

    def warm() -> float:
        started = time.perf_counter()
        results = build_testcase(Path(args.testcase), client=client, base_from=base_from, progress=quiet)
        assert not any(r.built for r in results), results
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"cold": [], "docker-cache": [], "warm": []}
    for _ in range(args.repeat):      # interleaved, so load on the machine hits all alike
        times["cold"].append(cold())
        times["docker-cache"].append(docker_cache())
        times["warm"].append(warm())
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"runtime layer of {Path(args.testcase).name} ({len(runtime.files)} context files), "
          f"median of {args.repeat}:")
    for name, value in med.items():
        print(f"  {name:13s} {value:7.3f} s   cold/{name} = {med['cold'] / value:6.1f}x")
    verdict = "OK" if med["warm"] < 3.0 else "MISSED"
    print(f"warm build {med['warm']:.3f} s, nothing rebuilt (target < 3 s): {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main())
