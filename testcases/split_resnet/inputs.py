"""Input images as uint8 NHWC arrays: seeded synthetic ones, or a local folder.

Made on the controller, which computes the reference logits from them and ships them
to the head device as one ``.npy`` (:func:`save`), so both see the very same pixels.
The float conversion and ImageNet normalisation live inside the exported model
(splitting.Preprocess): the full-offload baseline then ships the uint8 image, the
smallest honest input, and every split starts from identical bytes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SIZE = 224          # ImageNet crop
RESIZE = 256        # shorter side before the centre crop
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def synthetic(count: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """``count`` deterministic images: smooth colour fields plus noise, not pure noise,
    so compression of activations behaves as it does on photographs rather than static."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        f = rng.uniform(0.5, 4.0, size=(3, 2))
        ph = rng.uniform(0, 2 * np.pi, size=3)
        base = np.stack([np.sin(2 * np.pi * (f[c, 0] * xx + f[c, 1] * yy) + ph[c]) for c in range(3)], -1)
        noise = rng.normal(0, 0.15, size=(size, size, 3))
        out[i] = np.clip((base * 0.45 + 0.5 + noise) * 255, 0, 255).astype(np.uint8)
    return out


def folder(path: str | Path, count: int) -> np.ndarray:
    """The first ``count`` images of ``path`` (sorted, cycled if fewer): resize the shorter
    side to 256, centre-crop 224, RGB uint8 - the standard ImageNet evaluation transform."""
    from PIL import Image

    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"--data {root}: no images ({', '.join(IMAGE_SUFFIXES)}) found; "
                         "pass a folder of images or leave --data out for synthetic ones")
    out = np.empty((count, SIZE, SIZE, 3), np.uint8)
    for i in range(count):
        with Image.open(files[i % len(files)]) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = RESIZE / min(w, h)
            im = im.resize((max(RESIZE, round(w * s)), max(RESIZE, round(h * s))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - SIZE) // 2, (h - SIZE) // 2
            out[i] = np.asarray(im.crop((left, top, left + SIZE, top + SIZE)), np.uint8)
    return out


def load(count: int, seed: int = 0, data: str | None = None) -> np.ndarray:
    """Synthetic images unless ``data`` names a folder."""
    return folder(data, count) if data else synthetic(count, seed)


def save(images: np.ndarray, outdir: Path) -> Path:
    """``images`` as ``outdir/images-<content hash>.npy`` (written once): the head's ``--inputs``."""
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:12]
    path = Path(outdir).resolve() / f"images-{len(images)}-{digest}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, images)
        tmp.replace(path)
    return path
