"""Split inference for any torch model: capture, list cut points, cut, export, judge fidelity.

The controller side of split experiments (the device side is :mod:`pytest_collab.devicekit`)::

    from pytest_collab import split
    model = split.load_model("mobilenet_v3_small")
    x = split.example((3, 224, 224))
    for p in split.points(model, x):           # execution order, with crossing tensors
        print(p.name, [t.shape for t in p.boundary])
    row = split.run(collab, model, point="features.4", encoding="fp16")   # on the lab, recorded
    s = split.cut(model, "features.4", x)      # s.head(x) -> tuple; s.tail(*that) -> logits
    paths = split.export(s, "out/")            # head.pt2, tail.pt2 + .pt2.json sidecars

torch is imported inside the functions only, so importing this package costs nothing.
"""
from __future__ import annotations

from typing import Any

from pytest_collab.split.capture import Captured, capture
from pytest_collab.split.cutting import Split
from pytest_collab.split.errors import CaptureError, PointError, SplitError
from pytest_collab.split.export import ENCODABLE_DTYPES, Exported, check_encodable, export, manual
from pytest_collab.split.models import example, from_folder, load_model, synthetic, to_float, with_preprocess
from pytest_collab.split.points import Analysis, CutPoint, TensorSpec, analyse, spread
from pytest_collab.split.run import run

__all__ = [
    "Analysis", "CaptureError", "Captured", "CutPoint", "ENCODABLE_DTYPES", "Exported", "PointError",
    "Split", "SplitError", "TensorSpec", "analyse", "auto", "capture", "check_encodable", "cut", "example",
    "export", "from_folder", "load_model", "manual", "points", "run", "spread", "synthetic", "to_float",
    "with_preprocess",
]


def _analysis(model: Any, example: Any = None, method: str = "auto") -> Analysis:
    if isinstance(model, Analysis):
        return model
    if isinstance(model, Captured):
        return analyse(model)
    if example is None:
        raise SplitError("pass an example input batch, e.g. split.example((3, 224, 224))")
    return analyse(capture(model, example, method=method))


def points(model: Any, example: Any = None, *, nodes: bool = False, depth: int | None = None,
           method: str = "auto") -> list[CutPoint]:
    """Valid cut points in execution order: every module end (to ``depth``), or every op (``nodes``).

    ``model`` is an ``nn.Module`` (captured on ``example``), or an :class:`Analysis` /
    :class:`Captured` made before (capture once, cut many times).
    """
    return _analysis(model, example, method).listed(nodes=nodes, depth=depth)


def auto(model: Any, example: Any = None, k: int = 4) -> list[CutPoint]:
    """``k`` cut points spread over the model (``--split-points auto``)."""
    return spread(points(model, example), k)


def cut(model: Any, point: str | int | CutPoint, example: Any = None, method: str = "auto") -> Split:
    """The model cut at ``point`` (name, alias, node name, index or CutPoint): head and tail modules.

    Raises :class:`PointError` for an unknown point (listing the valid ones) or an
    impossible one (naming the nearest valid ones).
    """
    from pytest_collab.split.cutting import make_split

    analysis = _analysis(model, example, method)
    return make_split(analysis, analysis.resolve(point))
