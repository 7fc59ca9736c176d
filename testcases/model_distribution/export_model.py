"""Export a randomly initialised classifier with ``torch.export``: a ``.pt2`` and its sidecar.

Kept small on purpose: once ``pytest_collab.split`` is on main, ``export`` becomes a call
to its exporter. Random weights (fixed seed) and a small input: the experiment measures
distribution and serving, not accuracy, and nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

INPUT_SHAPE = (1, 3, 64, 64)
MODELS = ("mobilenet_v3_small", "tiny_cnn")


def build(model: str):  # -> torch.nn.Module
    import torch

    torch.manual_seed(0)
    if model == "tiny_cnn":
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10)).eval()
    if model == "mobilenet_v3_small":
        import torchvision

        return torchvision.models.mobilenet_v3_small(weights=None).eval()
    raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


def export(model: str, folder: Path) -> list[Path]:
    """``<folder>/<model>.pt2`` and ``<model>.json`` ({"inputs": [...], "outputs": [...]})."""
    import torch

    net = build(model)
    example = torch.zeros(INPUT_SHAPE)
    with torch.no_grad():
        out = net(example)
        program = torch.export.export(net, (example,))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pt2, sidecar = folder / f"{model}.pt2", folder / f"{model}.json"
    torch.export.save(program, str(pt2))
    sidecar.write_text(json.dumps({
        "model": model,
        "inputs": [{"name": "x", "shape": list(INPUT_SHAPE), "dtype": "float32"}],
        "outputs": [{"name": "logits", "shape": list(out.shape), "dtype": "float32"}]}, indent=1))
    return [pt2, sidecar]
