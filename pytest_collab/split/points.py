"""Cut points of a captured graph: where a model can be split, and what crosses each cut.

A cut after op *i* of the execution order sends every tensor made at or before *i* that an
op after *i* (or the model's output) still needs: one tensor between stages, two or more
inside a residual block (the branch and the skip). Symbolic sizes (the batch) are not sent:
the tail reads them off a tensor it receives. A cut is impossible when something else must
cross (a list from ``split``, a Python value) or when a size cannot be recomputed.

Points are named by the outermost module that ends at the cut (``features.4``,
``layer2.1``; inner modules ending there are aliases), or by the op's node name for cuts
that end no module (``add_3``). The last op is no cut (the tail would be empty); the
two baselines, the whole model on either side, are the experiment's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from pytest_collab.split.capture import Captured
from pytest_collab.split.errors import PointError, nearest


@dataclass(frozen=True)
class TensorSpec:
    """One tensor crossing a cut; ``shape`` has -1 for the batch (symbolic) dimension, which is
    dim 0 for most tensors but not all (attention's (sequence, batch, features)); ``bytes`` is per sample."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def bytes(self) -> int:
        """Bytes of one sample in the tensor's own dtype."""
        return self.elements * _itemsize(self.dtype)

    @property
    def elements(self) -> int:
        """Elements of one sample: the product of the fixed dimensions."""
        n = 1
        for s in self.shape:
            n *= s if s >= 0 else 1
        return n

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class CutPoint:
    """A place to cut: after op ``index`` of the execution order."""

    name: str
    index: int
    node: str                       # the last op on the head side
    module: str                     # innermost module that op runs in ("" for the model itself)
    boundary: tuple[TensorSpec, ...]
    aliases: tuple[str, ...] = ()   # inner modules ending at the same op
    depth: int = 0                  # dots in ``name`` + 1; 0 for a node-named point
    problem: str = ""               # why this cut is impossible ("" when it is valid)

    @property
    def valid(self) -> bool:
        return not self.problem

    @property
    def bytes(self) -> int:
        """Bytes per sample crossing the cut, in the tensors' own dtypes (fp32 for float32)."""
        return sum(t.bytes for t in self.boundary)

    @property
    def fp32_bytes(self) -> int:
        """Bytes per sample if every crossing tensor were sent as fp32."""
        return sum(t.elements * 4 for t in self.boundary)


@dataclass
class Analysis:
    """Every op position of a captured graph with its crossing values, computed once."""

    captured: Captured
    cuts: list[CutPoint]                             # one per op position except the last
    crossing: list[list[Any]] = field(repr=False)    # crossing value nodes per position
    by_name: dict[str, int] = field(default_factory=dict)

    def listed(self, nodes: bool = False, depth: int | None = None) -> list[CutPoint]:
        """Valid points in execution order: module ends (optionally to ``depth``), or every op."""
        out = []
        for cut in self.cuts:
            if not cut.valid:
                continue
            if nodes or (cut.depth and (depth is None or cut.depth <= depth)):
                out.append(cut)
        return out

    def resolve(self, point: str | int | CutPoint) -> CutPoint:
        """The cut named ``point`` (a module path, alias, node name, index or CutPoint)."""
        if isinstance(point, CutPoint):
            point = point.index
        if isinstance(point, int):
            if not 0 <= point < len(self.cuts):
                raise PointError(f"cut index {point} is out of range 0..{len(self.cuts) - 1}")
            cut = self.cuts[point]
        else:
            if point not in self.by_name:
                names = [c.name for c in self.listed()]
                model = type(self.captured.model).__name__
                raise PointError(
                    f"{model} has no cut point {point!r}; nearest valid: {', '.join(nearest(point, names))}\n"
                    f"valid points ({len(names)}): {', '.join(names)}\n"
                    "(module paths of the model; `collab split points MODEL --nodes` lists every op)")
            cut = self.cuts[self.by_name[point]]
        if not cut.valid:
            before = [c.name for c in self.cuts[:cut.index] if c.valid][-2:]
            after = [c.name for c in self.cuts[cut.index + 1:] if c.valid][:2]
            raise PointError(f"cannot cut at {point!r} (after op {cut.node}): {cut.problem}; nearest valid "
                             f"points: {', '.join(before + after) or 'none'}")
        return cut


def analyse(cap: Captured) -> Analysis:
    """All cut positions of ``cap``: names, crossing tensors, and why a cut is impossible."""
    order = cap.order
    pos = {n: i for i, n in enumerate(order)}
    for n in cap.inputs:
        pos[n] = -1
    last_use: dict[Any, int] = {}
    end = len(order)
    for n in [*cap.inputs, *order]:
        uses = [pos.get(u, end) for u in n.users if u in pos or u is cap.output]
        last_use[n] = max(uses, default=-1)
    ends: dict[int, list[str]] = {}
    last_of: dict[str, int] = {}
    for i, n in enumerate(order):
        for path in cap.module_paths(n):
            last_of[path] = i
    for path, i in last_of.items():
        ends.setdefault(i, []).append(path)

    cuts: list[CutPoint] = []
    crossing: list[list[Any]] = []
    alive = [n for n in cap.inputs if last_use[n] >= 0]
    by_name: dict[str, int] = {}
    for i, node in enumerate(order[:-1]):
        alive = [n for n in alive if last_use[n] > i]
        if last_use[node] > i:
            alive.append(node)
        crossing.append(list(alive))
        modules = sorted(ends.get(i, []), key=lambda p: (p.count("."), p))
        tensors, problem = _boundary(cap, alive)
        paths = cap.module_paths(node)
        name = modules[0] if modules else node.name
        cuts.append(CutPoint(name=name, index=i, node=node.name, module=paths[-1] if paths else "",
                             boundary=tuple(tensors), aliases=tuple(modules[1:]),
                             depth=name.count(".") + 1 if modules else 0, problem=problem))
        for key in (*modules, node.name):
            by_name.setdefault(key, i)
    return Analysis(cap, cuts, crossing, by_name)


def _boundary(cap: Captured, alive: Sequence[Any]) -> tuple[list[TensorSpec], str]:
    tensors: list[TensorSpec] = []
    sizes: list[Any] = []
    for n in alive:
        kind, shape, dtype = value_info(n)
        if kind == "tensor":
            tensors.append(TensorSpec(n.name, shape, dtype))
        elif kind == "size":
            sizes.append(n)
        else:
            return tensors, f"{n.name} ({kind}) would have to cross; only tensors can be sent"
    if not tensors:
        return tensors, "no tensor crosses"
    for s in sizes:
        if not _recomputable(s, alive):
            return tensors, f"size {s.name} cannot be recomputed from the tensors that cross"
    return tensors, ""


def _recomputable(node: Any, alive: Sequence[Any]) -> bool:
    from pytest_collab.split.cutting import size_source

    return size_source(node, [n for n in alive if value_info(n)[0] == "tensor"]) is not None


def value_info(node: Any) -> tuple[str, tuple[int, ...], str]:
    """(kind, shape with -1 for symbolic dims, dtype): kind is tensor, size or the value's type."""
    import torch

    val = node.meta.get("val")
    if val is None and "tensor_meta" in node.meta:
        tm = node.meta["tensor_meta"]
        if hasattr(tm, "shape"):
            shape = tuple(int(s) for s in tm.shape)  # fx: concrete sizes, the batch is dim 0
            return "tensor", (-1, *shape[1:]) if shape else shape, str(tm.dtype).replace("torch.", "")
        return "tuple", (), ""
    if isinstance(val, torch.Tensor):
        shape = tuple(-1 if not isinstance(s, int) else int(s) for s in val.shape)
        return "tensor", shape, str(val.dtype).replace("torch.", "")
    if isinstance(val, (torch.SymInt, int)) and not isinstance(val, bool):
        return "size", (), "int"
    return (type(val).__name__ if val is not None else "untyped value"), (), ""


def _itemsize(dtype: str) -> int:
    import torch

    return int(torch.empty((), dtype=getattr(torch, dtype)).element_size())


def spread(points: Sequence[CutPoint], k: int) -> list[CutPoint]:
    """``auto``: ``k`` distinct points near evenly spaced positions of the execution order,
    taken from the shallowest module depth whose points cover the whole model (stages rather
    than single layers; ViT's encoder layers rather than "encoder")."""
    if k <= 0 or not points:
        return []
    total = max(p.index for p in points) + 1
    named = [p for p in points if p.depth] or list(points)
    pool = named
    for depth in sorted({p.depth for p in named}):
        pool = [p for p in named if p.depth <= depth]
        edges = [-1, *sorted(p.index for p in pool), total]
        if len(pool) >= k and max(b - a for a, b in zip(edges, edges[1:])) <= 1.5 * total / k:
            break
    if len(pool) <= k:
        return list(pool)
    chosen: list[CutPoint] = []
    for j in range(k):
        target = total * (j + 0.5) / k
        free = [p for p in pool if p not in chosen]
        chosen.append(min(free, key=lambda p: (abs(p.index - target), p.index)))
    return sorted(chosen, key=lambda p: p.index)
