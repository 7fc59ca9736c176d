"""Models and inputs for split experiments: torchvision by name or a user's ``module:attr``.

Random init only (``weights=None`` for torchvision, never a download); a local
state_dict through ``weights=PATH`` (``--split-weights``), or a model trained on
scikit-learn's digits through :mod:`pytest_collab.split.digits`.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from pytest_collab.split.errors import SplitError

# The model a split experiment runs when none is named (small, not a ResNet: split_resnet has those).
DEFAULT_MODEL = "mobilenet_v3_small"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT = (3, 224, 224)


def torchvision_names() -> list[str]:
    """The classification models torchvision builds (no detection/segmentation/video)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def load_model(spec: Any, weights: str | Path | None = None, seed: int = 0, num_classes: int | None = None) -> Any:
    """An ``nn.Module`` in eval mode from a torchvision name or ``pkg.mod:Attr``.

    ``Attr`` may be a module instance, a class or a factory (called without arguments, or
    with ``num_classes`` when given). ``weights`` is a local state_dict file.
    """
    import torch

    torch.manual_seed(seed)
    if isinstance(spec, torch.nn.Module):
        model = spec
    elif ":" in str(spec):
        model = _from_import(str(spec), num_classes)
    else:
        names = torchvision_names()
        if spec not in names:
            from pytest_collab.split.errors import nearest

            raise SplitError(f"model {spec!r} is neither a torchvision classification model nor "
                             f"'pkg.module:Attr'; nearest torchvision names: {', '.join(nearest(str(spec), names))}")
        import torchvision

        kwargs = {"num_classes": num_classes} if num_classes else {}
        model = getattr(torchvision.models, spec)(weights=None, **kwargs)
    if weights:
        load_weights(model, weights)
    return model.eval()


def _from_import(spec: str, num_classes: int | None) -> Any:
    import torch

    mod_name, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise SplitError(f"model {spec!r}: cannot import {mod_name!r} ({exc}); is it on PYTHONPATH?") from exc
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SplitError(f"model {spec!r}: {mod_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, torch.nn.Module):
        obj = obj(num_classes=num_classes) if num_classes else obj()
    if not isinstance(obj, torch.nn.Module):
        raise SplitError(f"model {spec!r} made a {type(obj).__name__}, not a torch.nn.Module")
    return obj


def load_weights(model: Any, weights: str | Path) -> None:
    """Load a local state_dict (or ``{"state_dict": ...}``) file into ``model``."""
    import torch

    path = Path(weights)
    if not path.is_file():
        raise SplitError(f"--split-weights {path}: no such file (a local state_dict .pt/.pth)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise SplitError(f"--split-weights {path}: does not fit {type(model).__name__}: {first}") from exc


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,64,64"`` -> (3, 64, 64); the error names the option."""
    try:
        shape = tuple(int(s) for s in re.split(r"[,x]", text.strip()))
    except ValueError:
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise SplitError(f"--input {text!r}: give the input shape without the batch, e.g. 3,224,224")
    return shape


def synthetic(n: int, shape: tuple[int, ...] = DEFAULT_INPUT, seed: int = 0) -> np.ndarray:
    """``n`` deterministic uint8 images (N, C, H, W): smooth colour fields plus noise, so
    activations compress as they would on photographs rather than on static."""
    rng = np.random.default_rng(seed)
    c, h, w = (tuple(shape) + (1, 1))[:3] if len(shape) < 3 else tuple(shape[-3:])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h, xx / w
    out = np.empty((n, c, h, w), np.uint8)
    for i in range(n):
        f = rng.uniform(0.5, 4.0, size=(c, 2))
        ph = rng.uniform(0, 2 * np.pi, size=c)
        base = np.stack([np.sin(2 * np.pi * (f[k, 0] * xx + f[k, 1] * yy) + ph[k]) for k in range(c)])
        noise = rng.normal(0, 0.15, size=(c, h, w))
        out[i] = np.clip((base * 0.45 + 0.5 + noise) * 255, 0, 255).astype(np.uint8)
    return out.reshape((n, *shape))


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def from_folder(path: str | Path, n: int, shape: tuple[int, ...] = DEFAULT_INPUT) -> np.ndarray:
    """The first ``n`` images under ``path`` (sorted, cycled if fewer) as uint8 (N, C, H, W):
    the shorter side resized to 256/224 of the crop, then centre-cropped to H x W (the
    ImageNet evaluation transform at 224); ``C`` 1 reads them grey, 3 as RGB."""
    from PIL import Image

    root = Path(path)
    c, h, w = tuple(shape[-3:])
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if root.is_dir() else []
    if not files:
        raise SplitError(f"--split-data {root}: no images ({', '.join(IMAGE_SUFFIXES)}) found; pass a folder "
                         "of images, or leave --split-data out for synthetic ones")
    if c not in (1, 3):
        raise SplitError(f"--split-data {root}: images have 1 or 3 channels, the input shape asks for {c}")
    short = round(min(h, w) * 256 / 224)
    out = np.empty((n, c, h, w), np.uint8)
    for i in range(n):
        with Image.open(files[i % len(files)]) as src:
            im = src.convert("L" if c == 1 else "RGB")
        scale = short / min(im.size)
        im = im.resize((max(w, round(im.size[0] * scale)), max(h, round(im.size[1] * scale))),
                       Image.Resampling.BILINEAR)
        left, top = (im.size[0] - w) // 2, (im.size[1] - h) // 2
        arr = np.asarray(im.crop((left, top, left + w, top + h)), np.uint8)
        out[i] = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    return out


def to_float(images: Any, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> Any:
    """uint8 (N, C, H, W) -> normalised float32 tensor, the input torchvision models expect."""
    import torch

    x = torch.as_tensor(np.asarray(images)).float() / 255.0
    if x.dim() != 4:  # not an image batch: plain [0, 1] scaling
        return x
    c = x.shape[1]
    m = torch.tensor(mean[:c] if len(mean) >= c else mean[:1] * c).view(1, c, 1, 1)
    s = torch.tensor(std[:c] if len(std) >= c else std[:1] * c).view(1, c, 1, 1)
    return (x - m) / s


def example(shape: tuple[int, ...] = DEFAULT_INPUT, n: int = 2, seed: int = 0) -> Any:
    """A float example batch for capture: :func:`synthetic` images, normalised."""
    return to_float(synthetic(n, shape, seed))


def with_preprocess(model: Any, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> Any:
    """``model`` behind a uint8 (N, C, H, W) -> normalised float step, as one module.

    Cut this, and every side starts from the image bytes: the head artifact takes uint8
    (the full-offload baseline's input), and the point ``preprocess`` sends the float
    image. Point names stay the model's own (the wrapper's ``net.`` prefix is left out).
    """
    import torch

    class Preprocessed(torch.nn.Module):
        _collab_prefix = "net."

        def __init__(self) -> None:
            super().__init__()
            self.preprocess = _Normalize(mean, std)
            self.net = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(self.preprocess(x))

    return Preprocessed().eval()


def _Normalize(mean: tuple[float, ...], std: tuple[float, ...]) -> Any:  # noqa: N802 - a module, made lazily
    import torch

    class Normalize(torch.nn.Module):
        """uint8 -> float in [0, 1], minus ``mean``, over ``std`` per channel (dim 1)."""

        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.float() / 255.0 - self.mean) / self.std

    return Normalize()
