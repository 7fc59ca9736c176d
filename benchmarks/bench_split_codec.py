"""The device kit's codec on real activations of three model families: bytes, ratio, time, error.

Activations come from random-init models (fixed seed) on seeded synthetic 3x224x224 images,
at ``--points`` cut points the split library spreads over each model (every tensor that
crosses a cut, so a cut inside a block counts its two tensors). Two tables:

1. the codec table, per model and encoding (fp32 / fp16 / int8, blosc2 zstd/shuffle/1, the
   kit's default): bytes per query before and after compression, ratio (fp32 bytes / wire
   bytes), encode + compress and decompress + decode ms (medians), the activation's max
   error relative to its largest magnitude, and the logit error the tail then makes
   (max |logit - unsplit logit| / max |unsplit logit|), all means over the cuts but the
   errors (worst cut);
2. blosc2 settings against zlib and plain lz4 on the first model's activations: ratio,
   MB/s, and the time per query at 100 Mbit/s = compress + wire / link + decompress, the
   figure the default in the kit's codec.py is chosen by.

    .venv/bin/python benchmarks/bench_split_codec.py [--models resnet18,mobilenet_v3_small,efficientnet_b0]
        [--points 4] [--reps 5] [--no-compressors]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from pytest_collab import split  # noqa: E402
from pytest_collab.devicekit import codec  # noqa: E402

MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
ENCODINGS = ("fp32", "fp16", "int8")
LINK_BPS = 100e6 / 8
BLOSC = [(c, f, lv) for c in ("lz4", "blosclz", "zstd") for f in ("shuffle", "bitshuffle") for lv in (1, 5)]


class Cut:
    """One cut of a model: the tensors crossing it for one image, the tail and the unsplit logits."""

    def __init__(self, name: str, acts: list[np.ndarray], tail: Any, logits: np.ndarray) -> None:
        self.name, self.acts, self.tail, self.logits = name, acts, tail, logits

    def logit_error(self, decoded: list[np.ndarray]) -> float:
        import torch

        with torch.no_grad():
            out = self.tail(*(torch.from_numpy(np.ascontiguousarray(a)) for a in decoded))
        return float(np.abs(out.numpy() - self.logits).max() / np.abs(self.logits).max())


def cuts(model_name: str, k: int) -> list[Cut]:
    """``k`` cut points spread over the model, each run on one synthetic image."""
    import torch

    net = split.with_preprocess(split.load_model(model_name, seed=0))
    images = split.synthetic(2, (3, 224, 224), seed=0)
    analysis = split.analyse(split.capture(net, images))
    x = torch.from_numpy(images[:1].copy())
    out = []
    with torch.no_grad():
        logits = net(x).numpy()
        for point in split.spread(analysis.listed(), k):
            s = split.cut(analysis, point)
            acts = [t.numpy() for t in s.head(x)]
            out.append(Cut(point.name, acts, s.tail, logits))
    return out


def timed(fn: Any, reps: int) -> tuple[float, Any]:
    times, res = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def codec_rows(model: str, model_cuts: list[Cut], reps: int) -> list[dict[str, Any]]:
    """One row per encoding: means over the cuts, worst-cut errors."""
    comp = codec.Compression()
    rows = []
    for enc in ENCODINGS:
        fp32 = wire = t_enc = t_dec = act_err = logit_err = 0.0
        for c in model_cuts:
            decoded = []
            for a in c.acts:
                if a.dtype.kind != "f":     # integer and bool tensors go raw, bit exact
                    decoded.append(a)
                    continue
                te, (data, meta) = timed(lambda a=a: codec.pack(a, enc, comp), reps)
                td, back = timed(lambda data=data, meta=meta: codec.unpack(data, meta), reps)
                fp32, wire, t_enc, t_dec = fp32 + a.nbytes, wire + len(data), t_enc + te, t_dec + td
                act_err = max(act_err, float(np.abs(back.astype(np.float32) - a).max() / max(np.abs(a).max(), 1e-30)))
                decoded.append(back.astype(a.dtype))
            logit_err = max(logit_err, c.logit_error(decoded))
        n = len(model_cuts)
        rows.append({"model": model, "encoding": enc, "fp32": fp32 / n, "wire": wire / n, "ratio": fp32 / wire,
                     "enc_ms": t_enc / n * 1e3, "dec_ms": t_dec / n * 1e3, "act_err": act_err, "logit_err": logit_err})
    return rows


def compressors() -> Any:
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


def compressor_table(model: str, acts: list[np.ndarray], reps: int) -> None:
    print(f"\ncompressors on {model}'s activations ({len(acts)} tensors)")
    print(f"{'encoding':>8} {'compressor':<28} {'ratio':>6} {'comp MB/s':>10} {'dec MB/s':>9} {'ms@100Mbit':>11}")
    best: dict[str, tuple[float, str]] = {}
    for enc in ENCODINGS:
        encoded = [codec.encode(a, enc) for a in acts]
        for name, comp, dec in compressors():
            raw = wire = t_c = t_d = 0.0
            for e in encoded:
                ts = np.dtype(e.meta["wire_dtype"]).itemsize
                tc, z = timed(lambda e=e, ts=ts: comp(e.data, ts), reps)
                td, back = timed(lambda z=z: dec(z), reps)
                assert bytes(back) == bytes(e.data), f"{name} did not round-trip"
                raw, wire, t_c, t_d = raw + len(e.data), wire + len(z), t_c + tc, t_d + td
            per_query = (t_c + wire / LINK_BPS + t_d) / len(encoded) * 1e3
            print(f"{enc:>8} {name:<28} {raw / wire:>6.2f} {raw / t_c / 1e6:>10.0f} {raw / t_d / 1e6:>9.0f} "
                  f"{per_query:>11.2f}")
            if name.startswith("blosc2") and per_query < best.get(enc, (1e9, ""))[0]:
                best[enc] = (per_query, name)
    for enc, (ms, name) in best.items():
        print(f"best blosc2 for {enc} at 100 Mbit/s: {name} ({ms:.2f} ms per tensor, mean over the cuts)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: three families)")
    ap.add_argument("--points", type=int, default=4, help="cut points spread over each model (default 4)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-compressors", action="store_true", help="skip the compressor comparison")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    per_model = {}
    for name in args.models.split(","):
        per_model[name] = cuts(name, args.points)
        print(f"  {name}: cuts {', '.join(c.name for c in per_model[name])}", flush=True)
    print(f"\n{'model':<20} {'encoding':>8} {'fp32 B':>9} {'wire B':>9} {'ratio':>6} {'enc ms':>7} {'dec ms':>7} "
          f"{'act err':>9} {'logit err':>9}")
    for name, model_cuts in per_model.items():
        for r in codec_rows(name, model_cuts, args.reps):
            print(f"{r['model']:<20} {r['encoding']:>8} {r['fp32']:>9.0f} {r['wire']:>9.0f} {r['ratio']:>6.2f} "
                  f"{r['enc_ms']:>7.3f} {r['dec_ms']:>7.3f} {r['act_err']:>9.2e} {r['logit_err']:>9.2e}")
    print("bytes, ms: per query (one image), mean over the cuts; ratio: fp32 bytes / wire bytes (blosc2 zstd/"
          "shuffle/1); act err: max |decoded - x| / max |x|, logit err: max |logit error| / max |logit|, worst cut")
    if not args.no_compressors:
        first = next(iter(per_model))
        compressor_table(first, [a for c in per_model[first] for a in c.acts if a.dtype.kind == "f"], args.reps)


if __name__ == "__main__":
    main()
