"""Write a split as two ``torch.export`` artifacts a device loads with torch alone.

``head.pt2`` and ``tail.pt2`` (``torch.export.load(p).module()``), each with a JSON sidecar
``<artifact>.pt2.json`` that the device kit reads to make inputs and check what arrives::

    {"inputs":  [{"name": "relu", "shape": [-1, 64, 16, 16], "dtype": "float32"}],
     "outputs": [...], "role": "head", "point": "layer1", "model": "ResNet", "torch": "2.x"}

-1 marks the batch dimension (dynamic in the artifact). The head returns a tuple of the
crossing tensors, the tail takes them in that order.

Crossing tensors must be of a dtype the wire's codec can carry; that is checked here,
before any device starts (:data:`ENCODABLE_DTYPES`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pytest_collab.split.cutting import Split
from pytest_collab.split.errors import SplitError
from pytest_collab.split.points import CutPoint, TensorSpec, value_info

# dtype of a crossing tensor -> the codec encodings that can carry it (device kit codec:
# fp32/fp16/int8 convert or quantise floats; raw sends integers and masks bit for bit).
# Anything else (float64, complex, float8, quantised) is refused before a device starts.
_FLOAT = ("fp32", "fp16", "int8")
_EXACT = ("raw",)
ENCODABLE_DTYPES: dict[str, tuple[str, ...]] = {
    "float32": _FLOAT, "float16": _FLOAT, "bfloat16": _FLOAT,
    "uint8": _EXACT, "int8": _EXACT, "int32": _EXACT, "int64": _EXACT, "bool": _EXACT,
}


@dataclass(frozen=True)
class Exported:
    """Paths of an exported split (absolute); sidecars are ``<artifact>.json``."""

    head: Path
    tail: Path
    point: str

    @property
    def head_sidecar(self) -> Path:
        return self.head.with_name(self.head.name + ".json")

    @property
    def tail_sidecar(self) -> Path:
        return self.tail.with_name(self.tail.name + ".json")


def check_encodable(point: CutPoint | Split, encoding: str | None = None) -> None:
    """Raise :class:`SplitError` if a crossing tensor's dtype cannot be sent (with ``encoding``)."""
    cut = point.point if isinstance(point, Split) else point
    for t in cut.boundary:
        allowed = ENCODABLE_DTYPES.get(t.dtype)
        if allowed is None:
            raise SplitError(
                f"cut {cut.name!r}: tensor {t.name} is {t.dtype}, which the wire cannot encode "
                f"(it carries {', '.join(ENCODABLE_DTYPES)}); choose another cut point")
        if encoding is not None and encoding not in allowed:
            raise SplitError(
                f"cut {cut.name!r}: tensor {t.name} is {t.dtype}; encoding {encoding!r} cannot carry it "
                f"(use {' or '.join(allowed)}), or choose another cut point")


def export(split: Split, outdir: str | Path, encoding: str | None = None) -> Exported:
    """Export ``split`` to ``outdir/head.pt2`` and ``outdir/tail.pt2`` with sidecars."""
    import torch

    check_encodable(split, encoding)
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    x = split.captured.example if split.captured is not None else None
    if x is None:
        raise SplitError("this split has no example input to export with")
    with torch.no_grad():
        mid = tuple(split.head(x))
        y = split.tail(*mid)
    in_specs = [TensorSpec(n.name, value_shape(x), str(x.dtype).replace("torch.", ""))
                for n in split.captured.inputs]
    out_specs = _output_specs(split, y)
    model = type(split.captured.model).__name__
    head = out / "head.pt2"
    tail = out / "tail.pt2"
    ranges = split.captured.ranges if split.captured.method == "export" else None
    _export_one(split.head, (x,), in_specs, head, ranges)
    _export_one(split.tail, mid, list(split.boundary), tail, ranges)
    common = {"point": split.point.name, "model": model, "torch": torch.__version__}
    _sidecar(head, in_specs, split.boundary, {"role": "head", **common})
    _sidecar(tail, split.boundary, out_specs, {"role": "tail", **common})
    return Exported(head, tail, split.point.name)


def value_shape(x: Any) -> tuple[int, ...]:
    """The shape of an input batch with -1 for its batch dimension."""
    return (-1, *(int(s) for s in x.shape[1:]))


def _output_specs(split: Split, y: Any) -> list[TensorSpec]:
    """The tail's outputs: from the graph (symbolic dims known), or from ``y`` for a manual split."""
    import torch

    if split.captured.method == "manual":
        flat_y = list(y) if isinstance(y, (tuple, list)) else [y]
        return [TensorSpec(f"out{i}", value_shape(t), str(t.dtype).replace("torch.", "")) for i, t in enumerate(flat_y)]
    outs = torch.fx.map_arg(split.captured.output.args[0], lambda n: n)
    flat = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    specs = []
    for n in flat:
        kind, shape, dtype = value_info(n)
        specs.append(TensorSpec(n.name, shape, dtype) if kind == "tensor" else TensorSpec(n.name, (), kind))
    return specs


def _export_one(module: Any, args: tuple[Any, ...], specs: list[TensorSpec], path: Path,
                ranges: dict[Any, Any] | None) -> None:
    """Assemble the program from the captured graph (fast), else re-trace it with torch.export."""
    import torch

    from pytest_collab.split.assemble import assemble

    program = None
    if ranges is not None:
        try:
            program = assemble(module, ranges)
        except Exception:  # noqa: BLE001 - re-tracing below is slower but general
            program = None
    if program is None:
        batch = torch.export.Dim("batch")
        dynamic = tuple({d: batch for d, s in enumerate(spec.shape) if s == -1} or None for spec in specs)
        try:
            with torch.no_grad():
                program = torch.export.export(module, tuple(args), dynamic_shapes=dynamic)
        except Exception as exc:  # noqa: BLE001 - name the artifact and the first lines of why
            first = "\n    ".join(str(exc).strip().splitlines()[:6])
            raise SplitError(f"exporting {path.name} failed: {type(exc).__name__}: {first}") from exc
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.pt2")  # torch.export.save wants the .pt2 suffix
    torch.export.save(program, str(tmp))
    tmp.replace(path)


def _sidecar(path: Path, inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec], extra: dict[str, Any]) -> None:
    doc = {"inputs": [t.as_json() for t in inputs], "outputs": [t.as_json() for t in outputs], **extra}
    side = path.with_name(path.name + ".json")
    tmp = side.with_name(f"{side.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(side)


def manual(head: Any, tail: Any, example: Any, name: str = "manual") -> Split:
    """A split made by hand from two modules, for a model no graph capture handles.

    ``head(x)`` returns a tensor or a tuple of tensors; ``tail`` takes them positionally.
    The result exports like any other split.
    """
    import torch

    from pytest_collab.split.capture import Captured, batched

    x = batched(example)
    wrapped = _TupleHead(head)
    with torch.no_grad():
        mid = wrapped(x)
    boundary = tuple(TensorSpec(f"t{i}", value_shape(t), str(t.dtype).replace("torch.", "")) for i, t in enumerate(mid))
    point = CutPoint(name=name, index=0, node=name, module="", boundary=boundary, depth=1)
    graph = torch.fx.Graph()
    inp = graph.placeholder("x")
    cap = Captured(model=head, gm=None, example=x, method="manual", inputs=[inp], order=[], output=graph.output(inp))
    return Split(point, wrapped.eval(), tail.eval(), cap)


def _tuple_head_class() -> Any:
    import torch

    class TupleHead(torch.nn.Module):
        """Always returns a tuple, the head contract of the device kit."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            out = self.inner(x)
            return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    return TupleHead


def _TupleHead(inner: Any) -> Any:  # noqa: N802 - a class made on first use (torch lazily)
    return _tuple_head_class()(inner)
