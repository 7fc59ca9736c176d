"""A model trained on real data without downloads: scikit-learn's bundled digits.

Random weights make top-1 agreement meaningless, so fidelity is judged on a model that
has learnt something: the chosen architecture with 10 classes, trained for a bounded
number of CPU seconds on the 8x8 digits upsampled to the model's input size (grey
replicated to every channel), then scored on a held-out fifth. The state_dict is cached
by a content hash of everything that decides it (architecture and its source, input
shape, seed, budget, the digits themselves, torch version) under
``$PYTEST_COLLAB_CACHE`` or ``~/.cache/pytest-collab``, so the second call loads it.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_collab.split.errors import SplitError

RECIPE = 1          # bump when the training recipe changes: old cache entries then miss
CLASSES = 10
HOLDOUT = 0.2


def cache_dir() -> Path:
    """Where trained weights live: ``$PYTEST_COLLAB_CACHE`` or ``~/.cache/pytest-collab``."""
    root = os.environ.get("PYTEST_COLLAB_CACHE") or Path.home() / ".cache" / "pytest-collab"
    return Path(root) / "digits"


@dataclass(frozen=True)
class Trained:
    """A digits-trained model and how it got there."""

    model: Any
    accuracy: float      # on the held-out fifth
    path: Path           # the cached state_dict
    cached: bool         # True when loaded, not trained, by this call
    steps: int
    seconds: float


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise SplitError("digits training needs scikit-learn (pip install 'pytest-collab[vision]')") from exc
    d = load_digits()
    return np.asarray(d.images, dtype=np.float32), np.asarray(d.target, dtype=np.int64)


def split_indices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: a seeded shuffle, the last fifth held out."""
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * (1 - HOLDOUT)))
    return perm[:cut], perm[cut:]


def images(shape: tuple[int, ...], which: str = "holdout", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits as uint8 (N, C, H, W) images of ``shape`` with their labels; ``which`` is
    train, holdout or all. These are the bytes a device would send for full offload."""
    import torch

    data, target = _digits()
    train, hold = split_indices(len(data), seed)
    idx = {"train": train, "holdout": hold, "all": np.arange(len(data))}[which]
    c, h, w = shape
    x = torch.from_numpy(data[idx] * (255.0 / 16.0)).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    x = x.clamp(0, 255).round().to(torch.uint8).expand(-1, c, -1, -1).contiguous()
    return x.numpy(), target[idx]


def cache_key(arch: Any, shape: tuple[int, ...], seed: int, seconds: float, max_steps: int | None) -> str:
    """Content hash of everything that decides the trained weights."""
    import torch

    data, target = _digits()
    h = hashlib.sha256()
    h.update(data.tobytes())
    h.update(target.tobytes())
    doc = {"arch": _arch_id(arch), "shape": list(shape), "seed": seed, "seconds": seconds,
           "max_steps": max_steps, "recipe": RECIPE, "torch": torch.__version__.split("+")[0],
           "digits": h.hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _arch_id(arch: Any) -> str:
    """A name for the architecture; for a user's ``module:attr`` also its source code."""
    name = str(arch)
    if ":" in name:
        from pytest_collab.split.models import _from_import

        obj = type(_from_import(name, None))
        try:
            name += hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:12]
        except (OSError, TypeError):
            pass
    return name


def _build(arch: str, seed: int) -> Any:
    from pytest_collab.split.models import load_model

    try:
        return load_model(arch, seed=seed, num_classes=CLASSES)
    except TypeError:  # a user's factory without num_classes: it must give >= 10 outputs itself
        return load_model(arch, seed=seed)


def train(arch: str, shape: tuple[int, ...] = (3, 64, 64), seconds: float = 30.0, seed: int = 0,
          max_steps: int | None = None, batch: int = 64, progress: Any = None) -> Trained:
    """``arch`` (a torchvision name or ``module:attr``) trained on digits for at most
    ``seconds`` (and ``max_steps``), or loaded from the cache when trained before."""
    import torch

    from pytest_collab.split.models import to_float

    key = cache_key(arch, shape, seed, seconds, max_steps)
    path = cache_dir() / f"{str(arch).replace(':', '-').replace('/', '-')}-{key}.pt"
    model = _build(arch, seed)
    hold_x, hold_y = images(shape, "holdout", seed)
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        info = json.loads(path.with_suffix(".json").read_text())
        return Trained(model.eval(), float(info["accuracy"]), path, True, int(info["steps"]), float(info["seconds"]))
    tr_x, tr_y = images(shape, "train", seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    steps, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds and (max_steps is None or steps < max_steps):
        idx = rng.choice(len(tr_x), size=min(batch, len(tr_x)), replace=False)
        logits = model(to_float(tr_x[idx]))
        loss = torch.nn.functional.cross_entropy(logits[:, :CLASSES], torch.from_numpy(tr_y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if progress and steps % 20 == 0:
            progress(f"digits {arch}: step {steps}, loss {float(loss):.3f}, {time.monotonic() - t0:.0f}s")
    spent = time.monotonic() - t0
    model.eval()
    acc = evaluate(model, hold_x, hold_y)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the .json first: a reader that sees the .pt (the cache hit test) finds its facts too
    info = path.with_suffix(".json")
    tmp_info = info.with_name(f"{info.name}.{os.getpid()}.tmp")
    tmp_info.write_text(json.dumps(
        {"arch": str(arch), "shape": list(shape), "seed": seed, "budget_seconds": seconds, "steps": steps,
         "seconds": spent, "accuracy": acc, "holdout": len(hold_y)}, indent=1) + "\n")
    tmp_info.replace(info)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # xdist workers may train the same key
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return Trained(model, acc, path, False, steps, spent)


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch: int = 128) -> float:
    """Held-out accuracy of ``model`` on uint8 images ``x`` with labels ``y``."""
    import torch

    from pytest_collab.split.fidelity import accuracy
    from pytest_collab.split.models import to_float

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(to_float(x[i:i + batch]))[:, :CLASSES].numpy())
    return accuracy(np.concatenate(outs), y)


@functools.lru_cache(maxsize=None)
def _small_cnn_class() -> Any:
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        """A few-second digits model with a skip connection: two conv stages, a residual
        block, pooling and a linear head (works for any input of at least 8x8)."""

        def __init__(self, num_classes: int = CLASSES, channels: int = 3) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(4)
            self.fc = nn.Linear(16 * 16, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x)
            y = self.conv2(torch.relu(self.bn1(self.conv1(x))))
            x = torch.relu(x + y)
            return self.fc(torch.flatten(self.pool(x), 1))

    return SmallCNN


def __getattr__(name: str) -> Any:
    """``SmallCNN`` is made on first use so importing this module does not import torch."""
    if name == "SmallCNN":
        return _small_cnn_class()
    raise AttributeError(name)
