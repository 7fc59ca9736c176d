"""Build head and tail graph modules from a captured graph and a cut point.

The head runs the model's ops up to the cut and returns the crossing tensors as a tuple
(always a tuple, also for one tensor); the tail takes them as positional arguments, in
the same order, and returns the model's output. Parameters and other values that depend
on no input are copied to whichever side uses them; sizes the tail needs (the batch) are
read off a tensor it receives.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Sequence

from pytest_collab.split.capture import Captured
from pytest_collab.split.points import Analysis, CutPoint, TensorSpec, value_info

# Size arithmetic export records with Python operators; the tail may redo it.
_SIZE_OPS = {operator.add, operator.sub, operator.mul, operator.floordiv, operator.mod, operator.neg}


@dataclass
class Split:
    """A model cut in two: ``tail(*head(x))`` is the model's output."""

    point: CutPoint
    head: Any
    tail: Any
    captured: Captured

    @property
    def boundary(self) -> tuple[TensorSpec, ...]:
        return self.point.boundary

    def __call__(self, x: Any) -> Any:
        return self.tail(*self.head(x))


def size_source(node: Any, tensors: Sequence[Any]) -> Any:
    """How the tail recomputes size ``node`` from crossing ``tensors``: ("dim", tensor, d),
    ("copy",) for arithmetic on recomputable sizes, or None when it cannot."""
    import torch

    val = node.meta.get("val")
    if isinstance(val, torch.SymInt):
        want = str(val)
        for t in tensors:
            for d, s in enumerate(t.meta["val"].shape):
                if isinstance(s, torch.SymInt) and str(s) == want:
                    return ("dim", t, d)
    if node.op == "call_function" and node.target in _SIZE_OPS:
        for a in node.all_input_nodes:
            if value_info(a)[0] == "size" and size_source(a, tensors) is None:
                return None
        return ("copy",)
    return None


def make_split(analysis: Analysis, point: CutPoint) -> Split:
    """Head and tail ``GraphModule``s for a valid ``point`` of ``analysis``."""
    import torch

    cap = analysis.captured
    crossing = analysis.crossing[point.index]
    sent = [n for n in crossing if value_info(n)[0] == "tensor"]
    head_nodes = cap.order[:point.index + 1]
    tail_nodes = cap.order[point.index + 1:]

    head = torch.fx.Graph()
    env: dict[Any, Any] = {}
    for p in cap.inputs:
        env[p] = head.placeholder(p.name)
        env[p].meta = dict(p.meta)
    copy = _copier(head, env, cap)
    for n in head_nodes:
        env[n] = head.node_copy(n, copy)
    head.output(tuple(env[n] for n in sent))

    tail = torch.fx.Graph()
    tenv: dict[Any, Any] = {}
    for n in sent:
        tenv[n] = tail.placeholder(n.name)
        tenv[n].meta = dict(n.meta)
    tcopy = _copier(tail, tenv, cap, sent)
    for n in tail_nodes:
        tenv[n] = tail.node_copy(n, tcopy)
    outs = torch.fx.map_arg(cap.output.args[0], tcopy)
    tail.output(outs[0] if isinstance(outs, (tuple, list)) and len(outs) == 1 else outs)

    head_gm = torch.fx.GraphModule(cap.gm, head, class_name="Head")
    tail_gm = torch.fx.GraphModule(cap.gm, tail, class_name="Tail")
    return Split(point, head_gm.eval(), tail_gm.eval(), cap)


def _copier(graph: Any, env: dict[Any, Any], cap: Captured, sent: Sequence[Any] = ()) -> Any:
    """The arg mapping for ``node_copy``: known nodes, else copies of static values and sizes."""
    import torch

    def get(n: Any) -> Any:
        if n in env:
            return env[n]
        if n in cap.static:
            env[n] = graph.node_copy(n, get)
            return env[n]
        how = size_source(n, sent)
        if how is None:  # points.analyse marked such cuts invalid; reaching here is a bug
            raise AssertionError(f"value {n.name} crosses the cut but cannot be recomputed")
        if how[0] == "dim":
            env[n] = graph.call_function(torch.ops.aten.sym_size.int, (get(how[1]), how[2]))
            env[n].meta = dict(n.meta)
        else:
            env[n] = graph.node_copy(n, get)
        return env[n]

    return get
