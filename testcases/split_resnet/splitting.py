"""Controller side: build a ResNet, cut it at a split point, export head and tail.

Runs on the controller only (needs torchvision). The devices receive ``torch.export``
artifacts (``.pt2`` + the device kit's JSON sidecar, :mod:`pytest_collab.devicekit.artifact`)
and run them with the kit's generic programs, so they need torch alone. TorchScript is
deprecated in the torch this project uses; ``torch.export`` replaces it.

Split points: ``stem`` (after maxpool), ``layer1`` .. ``layer4``, any other named child of
the ResNet (``bn1``, ``avgpool``, ...), and the two baselines every split is judged
against: ``full_offload`` (no head, the device sends the uint8 image) and ``on_device``
(no tail, nothing sent).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
BASELINES = ("full_offload", "on_device")
MODELS = ("resnet18", "resnet50")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_ALIASES = {"stem": "maxpool"}
SIDECAR_FORMAT = "kit-sidecar-1"   # part of the cache key: artifacts of an older layout are re-exported


@dataclass(frozen=True)
class SplitArtifacts:
    """Absolute paths handed to the device programs (``None`` where a side is empty)."""

    head: Path | None
    tail: Path | None
    split: str
    model: str


def _preprocess_module():
    import torch

    class Preprocess(torch.nn.Module):
        """uint8 NHWC -> normalised float NCHW: inside the model so every side starts from bytes."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
            self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.permute(0, 3, 1, 2).float() - self.mean) / self.std

    return Preprocess()


def build_model(name: str = "resnet18", weights: str | None = None, seed: int = 0):
    """torchvision ResNet in eval mode: random init with ``seed``, or a local state_dict."""
    import torch
    import torchvision

    if name not in MODELS:
        raise ValueError(f"--split-model {name!r}: choose one of {', '.join(MODELS)}")
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"--split-weights {path}: no such file (a local state_dict .pth)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    return model.eval()


def _tail_module(children: list[tuple[str, Any]]):
    import torch

    class Tail(torch.nn.Module):
        """The rest of the ResNet; flattens before ``fc`` exactly as ResNet.forward does."""

        def __init__(self) -> None:
            super().__init__()
            names = [n for n, _ in children]
            self.body = torch.nn.Sequential(*[m for n, m in children if n != "fc"])
            self.fc = dict(children)["fc"] if "fc" in names else torch.nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.body(x)
            return self.fc(torch.flatten(x, 1))

    return Tail()


def split_modules(model, point: str):
    """(head, tail) modules; the head includes preprocessing. ``None`` for an empty side."""
    import torch

    children = list(model.named_children())
    names = [n for n, _ in children]
    pre = _preprocess_module()
    if point == "full_offload":
        return None, torch.nn.Sequential(pre, _tail_module(children)).eval()
    if point == "on_device":
        return torch.nn.Sequential(pre, _tail_module(children)).eval(), None
    cut = _ALIASES.get(point, point)
    if cut not in names or cut == "fc":
        raise ValueError(f"split point {point!r}: choose one of {', '.join(STAGES + BASELINES)} or a "
                         f"child of the model other than fc: {', '.join(names[:-1])}")
    i = names.index(cut) + 1
    head = torch.nn.Sequential(pre, *[m for _, m in children[:i]]).eval()
    return head, _tail_module(children[i:]).eval()


def full_model(model):
    """The unsplit reference: preprocessing + the whole network, uint8 NHWC in, logits out."""
    return split_modules(model, "on_device")[0]


def _export(module, example, path: Path, names: tuple[str, str]) -> None:
    """``torch.export`` with a dynamic batch, plus the kit's sidecar (``names``: in, out)."""
    import torch

    from pytest_collab.devicekit import artifact

    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
        out = module(example)
    torch.export.save(program, str(path))
    artifact.write_sidecar(path, [artifact.spec(names[0], [None, *example.shape[1:]], example.dtype)],
                           [artifact.spec(names[1], [None, *out.shape[1:]], out.dtype)])


def export_split(model_name: str, point: str, outdir: Path, weights: str | None = None,
                 seed: int = 0) -> SplitArtifacts:
    """Write head/tail artifacts under ``outdir/<key>/`` once; reuse them while inputs match."""
    import torch

    key = _cache_key(model_name, point, weights, seed)
    folder = Path(outdir).resolve() / key
    head_p, tail_p = folder / "head.pt2", folder / "tail.pt2"
    model = build_model(model_name, weights, seed) if not (folder / "done").exists() else None
    if model is not None:
        folder.mkdir(parents=True, exist_ok=True)
        head, tail = split_modules(model, point)
        x = torch.zeros(2, 224, 224, 3, dtype=torch.uint8)
        boundary = "images" if head is None else point
        if head is not None:
            _export(head, x, head_p, ("images", "logits" if tail is None else boundary))
            with torch.no_grad():
                x = head(x)
        if tail is not None:
            _export(tail, x, tail_p, (boundary, "logits"))
        (folder / "done").write_text(key)
    return SplitArtifacts(head_p if head_p.exists() else None, tail_p if tail_p.exists() else None,
                          point, model_name)


def reference_logits(model_name: str, images, batch: int, outdir: Path, weights: str | None = None,
                     seed: int = 0) -> Path:
    """Logits of the unsplit model for ``images`` at the client's batch size (oneDNN picks
    batch-dependent kernels, so a different batch would differ in the last bits).

    Cached in ``outdir`` by content: every test of the matrix (each cut, encoding, mode)
    needs the same logits, which cost as much controller CPU as the sample itself. The key
    is :func:`reference_key`; the file appears atomically, so a crash or a concurrent
    xdist worker never leaves a torn file that a later run would trust.
    """
    import os

    import numpy as np
    import torch

    path = Path(outdir).resolve() / f"ref-{reference_key(model_name, images, batch, weights, seed)}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        net = full_model(build_model(model_name, weights, seed))
        outs = []
        with torch.inference_mode():
            for start in range(0, len(images) - batch + 1, batch):
                outs.append(net(torch.from_numpy(images[start:start + batch])).numpy())
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, np.concatenate(outs))
        os.replace(tmp, path)
    return path


def reference_key(model_name: str, images, batch: int, weights: str | None = None, seed: int = 0) -> str:
    """What the reference logits depend on: model, weights (by content), seed, batch, and the
    images' bytes, shape and dtype. Not the cut: the reference is the unsplit model, which
    every cut must reproduce, so one file serves the whole matrix."""
    import numpy as np

    data = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{data.shape}:{data.dtype.str}:".encode())
    h.update(data.tobytes())
    return f"{_cache_key(model_name, 'full', weights, seed, content=True)}-b{int(batch)}-{h.hexdigest()[:16]}"


def _cache_key(model_name: str, point: str, weights: str | None, seed: int, *, content: bool = False) -> str:
    """``content=True`` keys weights by their bytes (a copied or touched file still hits)."""
    import torch

    if weights:
        src = f"sha256:{_file_digest(Path(weights))}" if content else f"{weights}:{Path(weights).stat().st_mtime_ns}"
    else:
        src = f"seed{seed}"
    tag = hashlib.sha256(f"{src}:{torch.__version__}:{SIDECAR_FORMAT}".encode()).hexdigest()[:10]
    return f"{model_name}-{point}-{tag}"


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a weights file, computed once per (path, size, mtime) in this process."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"--split-weights {path}: no such file (a local state_dict .pth)") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
