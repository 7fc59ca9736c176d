"""blosc2 settings vs zlib and plain lz4 on real ResNet activations: ratio and MB/s.

Activations come from a random-init ResNet-18 (fixed seed) on seeded synthetic images, at
each stage boundary, encoded fp32 / fp16 / int8. Prints one table row per (encoding,
compressor): compression ratio, compress and decompress MB/s (of encoded bytes, medians),
and the time per query at 100 Mbit/s = compress + wire / link + decompress, the figure the
default in the device kit's codec.py is chosen by.

    .venv/bin/python benchmarks/bench_split_codec.py [--model resnet18] [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testcases" / "split_resnet"))

import inputs  # noqa: E402
import numpy as np  # noqa: E402
import splitting  # noqa: E402

from pytest_collab.devicekit import codec  # noqa: E402

LINK_BPS = 100e6 / 8
BLOSC = [(c, f, lv) for c in ("lz4", "blosclz", "zstd") for f in ("shuffle", "bitshuffle") for lv in (1, 5)]


def activations(model_name: str, count: int) -> dict[str, np.ndarray]:
    import torch

    model = splitting.build_model(model_name)
    x = torch.from_numpy(inputs.synthetic(count, seed=0))
    out = {}
    for point in splitting.STAGES:
        head, _ = splitting.split_modules(model, point)
        with torch.no_grad():
            out[point] = head(x[:1]).numpy()
    return out


def timed(fn, reps: int) -> tuple[float, object]:
    times, res = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def compressors():
    for c, f, lv in BLOSC:
        comp = codec.Compression(c, f, lv)
        yield f"blosc2 {c}/{f}/{lv}", (lambda d, ts, comp=comp: codec.compress(d, ts, comp)), \
            (lambda d, comp=comp: codec.decompress(d, comp.codec))
    for lv in (1, 6):
        yield f"zlib level {lv}", (lambda d, ts, lv=lv: zlib.compress(d, lv)), zlib.decompress
    try:
        import lz4.frame
    except ImportError:
        print("(lz4 package not installed: plain lz4 rows skipped; pip install lz4)")
        return
    yield "lz4.frame", (lambda d, ts: lz4.frame.compress(d)), lz4.frame.decompress


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    acts = activations(args.model, 1)
    print(f"{'encoding':>8} {'compressor':<28} {'ratio':>6} {'comp MB/s':>10} {'dec MB/s':>9} {'ms@100Mbit':>11}")
    best: dict[str, tuple[float, str]] = {}
    for enc in ("fp32", "fp16", "int8"):
        encoded = [codec.encode(a, enc) for a in acts.values()]
        for name, comp, dec in compressors():
            raw = wire = t_c = t_d = 0.0
            for e in encoded:
                ts = np.dtype(e.meta["wire_dtype"]).itemsize
                tc, z = timed(lambda: comp(e.data, ts), args.reps)
                td, back = timed(lambda: dec(z), args.reps)
                assert bytes(back) == e.data, f"{name} did not round-trip"
                raw, wire, t_c, t_d = raw + len(e.data), wire + len(z), t_c + tc, t_d + td
            per_query = (t_c + wire / LINK_BPS + t_d) / len(encoded) * 1e3
            print(f"{enc:>8} {name:<28} {raw / wire:>6.2f} {raw / t_c / 1e6:>10.0f} {raw / t_d / 1e6:>9.0f} "
                  f"{per_query:>11.2f}")
            if name.startswith("blosc2") and per_query < best.get(enc, (1e9, ""))[0]:
                best[enc] = (per_query, name)
    for enc, (ms, name) in best.items():
        print(f"best blosc2 for {enc} at 100 Mbit/s: {name} ({ms:.2f} ms per query, mean over stage boundaries)")


if __name__ == "__main__":
    main()
