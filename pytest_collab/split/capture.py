"""Capture a model's graph once, so listing and cutting are cheap graph walks.

torch.export first (ATen ops with a symbolic batch dimension, the same kernels as eager
mode, so a cut reproduces the model bit for bit); torch.fx's symbolic trace where export
cannot (data-dependent shapes, unsupported Python). In-place ops of export's graph are
turned into their functional twins when that is provably safe, because a value mutated on
the far side of a cut would differ from the copy the wire delivered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_collab.split.errors import CaptureError

BATCH = "batch"


@dataclass
class Captured:
    """A model's graph: placeholders, the input-dependent ops in execution order, the output."""

    model: Any                  # the nn.Module captured (wrapped with its preprocessing, if any)
    gm: Any                     # torch.fx.GraphModule, parameters as get_attr nodes
    example: Any                # the example batch (batch >= 2, so the batch dim stays symbolic)
    method: str                 # "export" or "fx"
    inputs: list[Any]           # placeholder nodes
    order: list[Any]            # input-dependent nodes with users, in execution order
    output: Any                 # the output node
    prefix: str = ""            # module-path prefix left out of point names ("net.")
    why_not_export: str = ""    # export's error when method == "fx"
    static: set[Any] = field(default_factory=set)  # nodes that depend on no input (parameters...)
    ranges: dict[Any, Any] = field(default_factory=dict)  # export's range constraints (the batch symbol)

    def module_paths(self, node: Any) -> list[str]:
        """Module paths that ``node`` runs inside, outermost first, prefix removed."""
        stack = node.meta.get("nn_module_stack") or {}
        paths = []
        for key, value in stack.items():
            path = value[0] if isinstance(value, tuple) else key
            paths.append(str(path))
        if node.op == "call_module":
            paths.append(str(node.target))
        out = []
        for p in paths:
            if self.prefix and p.startswith(self.prefix):
                p = p[len(self.prefix):]
            elif self.prefix and p == self.prefix.rstrip("."):
                p = ""
            if p and p not in out:
                out.append(p)
        return out


def batched(example: Any) -> Any:
    """The example as a float/uint8 tensor with at least 2 rows (export pins a size-1 dim)."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.ascontiguousarray(example)) if isinstance(example, np.ndarray) else example
    if not isinstance(x, torch.Tensor):
        raise CaptureError(f"the example input must be a tensor or numpy array, not {type(example).__name__}")
    if x.dim() == 0:
        raise CaptureError("the example input needs a batch dimension first, e.g. shape (1, 3, 64, 64)")
    if x.shape[0] < 2:
        x = x.expand(2, *x.shape[1:]).clone()
    return x


def capture(model: Any, example: Any, method: str = "auto", prefix: str = "") -> Captured:
    """Capture ``model`` (eval mode) on ``example``; ``method`` is auto, export or fx."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise CaptureError(f"can only split a torch.nn.Module, not {type(model).__name__}")
    model = model.eval()
    prefix = prefix or getattr(model, "_collab_prefix", "")  # models.with_preprocess
    x = batched(example)
    why = ""
    if method in ("auto", "export"):
        try:
            return _from_export(model, x, prefix)
        except Exception as exc:  # noqa: BLE001 - any export failure falls back to fx
            why = _first_lines(exc)
            if method == "export":
                raise CaptureError(f"torch.export could not capture {type(model).__name__}: {why}\n"
                                   "fix: try method='fx' (collab split points --capture fx), or cut the model "
                                   "by hand with split.manual(head, tail)") from exc
    try:
        return _from_fx(model, x, prefix, why)
    except Exception as exc:  # noqa: BLE001
        fx_why = _first_lines(exc)
        raise CaptureError(
            f"could not capture {type(model).__name__}:\n  torch.export: {why or '(not tried)'}\n"
            f"  torch.fx: {fx_why}\nfix: make the op named above traceable (no Python control flow on tensor "
            "values), or cut the model by hand with split.manual(head, tail)") from exc


def _first_lines(exc: BaseException, n: int = 3) -> str:
    """The error's first lines, and the model's own line that raised it (the failing op)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip() and "http" not in ln][:n]
    where = _user_frame(exc)
    if where:
        lines.append(f"at {where}")
    return "\n    ".join(lines)


def _user_frame(exc: BaseException) -> str:
    """``file:line in func: source`` of the innermost frame outside torch and this package."""
    import linecache
    import traceback
    from pathlib import Path

    import torch

    skip = (str(Path(torch.__file__).parent), str(Path(__file__).parent.parent))
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith(skip) and not frame.filename.startswith("<"):
            code = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {code}"
    return ""


def _from_export(model: Any, x: Any, prefix: str) -> Captured:
    import torch

    batch = torch.export.Dim(BATCH)
    with torch.no_grad():
        ep = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    gm = ep.module()
    if not _functionalize_inplace(gm):
        ep = ep.run_decompositions({})  # slow but always correct: a functional graph
        gm = ep.module()
    cap = _finish(model, gm, x, "export", prefix, "")
    cap.ranges = dict(ep.range_constraints)
    return cap


def _from_fx(model: Any, x: Any, prefix: str, why: str) -> Captured:
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    gm = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        ShapeProp(gm).propagate(x)
    return _finish(model, gm, x, "fx", prefix, why)


def _finish(model: Any, gm: Any, x: Any, method: str, prefix: str, why: str) -> Captured:
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    output = next(n for n in gm.graph.nodes if n.op == "output")
    if len(inputs) != 1:
        raise CaptureError(f"{type(model).__name__} takes {len(inputs)} inputs; the split library cuts "
                           "models with one input tensor")
    dependent = set(inputs)
    order, static = [], set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        if any(a in dependent for a in node.all_input_nodes):
            if node.users:  # nodes without users are guards and asserts: checked at capture already
                dependent.add(node)
                order.append(node)
        else:
            static.add(node)
    if not order:
        raise CaptureError(f"{type(model).__name__}: the graph has no op that uses the input; nothing to cut")
    return Captured(model, gm, x, method, inputs, order, output, prefix, why, static)


def _functionalize_inplace(gm: Any) -> bool:
    """Swap ``relu_``-style ops for ``relu`` where nothing else can see the mutation.

    Safe when the mutated tensor (and every alias it was made from) has that op as its only
    user; returns False when some in-place op is not safe, leaving the graph unchanged.
    """
    import torch

    swaps = []
    for node in gm.graph.nodes:
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        if not target._schema.is_mutable:
            continue
        name = target._schema.name.split("::")[-1]
        functional = getattr(getattr(torch.ops.aten, name.rstrip("_"), None), target._overloadname, None)
        if not name.endswith("_") or functional is None or not _sole_user_chain(node):
            return False
        swaps.append((node, functional))
    for node, functional in swaps:
        node.target = functional
    gm.recompile()
    return True


def _sole_user_chain(node: Any) -> bool:
    import torch

    arg = node.args[0] if node.args else None
    while True:
        if not isinstance(arg, torch.fx.Node) or arg.op != "call_function" or len(arg.users) != 1:
            return False
        target = arg.target
        aliases = isinstance(target, torch._ops.OpOverload) and any(
            r.alias_info is not None for r in target._schema.returns)
        if not aliases:
            return True
        arg = arg.args[0]
