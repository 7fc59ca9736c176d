"""The JSON sidecar of an exported head or tail: which tensors go in, which come out.

The controller writes ``<artifact>.json`` beside every ``.pt2`` it exports (for
``head.pt2``: ``head.pt2.json``, see :func:`sidecar_path`); the device programs read it
to warm up, to check what arrives and to encode each boundary tensor. Format::

    {"format": 1,
     "inputs":  [{"name": "x",    "shape": [null, 64, 56, 56], "dtype": "float32"}, ...],
     "outputs": [{"name": "x",    "shape": [null, 128, 28, 28], "dtype": "float32"},
                 {"name": "skip", "shape": [null, 64, 56, 56],  "dtype": "float32"}]}

``inputs`` are the module's positional arguments in order, ``outputs`` its return value
(a tuple of tensors, or one tensor as a list of one). A shape holds ints, and ``null``
for a dimension exported as dynamic (the batch). ``dtype`` is the torch/numpy name
without ``torch.`` (``float32``, ``uint8``, ``int64``, ``bool``). A head's ``outputs``
are the tail's ``inputs``: the wire carries them in this order. Standard library only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

FORMAT = 1


class ArtifactError(ValueError):
    """A sidecar is missing or does not say what the programs need; the message names the file."""


@dataclass(frozen=True)
class TensorSpec:
    """One tensor crossing an artifact's boundary."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def concrete(self, batch: int = 1) -> tuple[int, ...]:
        """The shape with every dynamic dimension set to ``batch`` (warm-up, synthetic inputs)."""
        return tuple(batch if d is None else d for d in self.shape)

    def mismatch(self, shape: Sequence[int]) -> str | None:
        """Why an array of ``shape`` cannot be this tensor, or ``None`` when it can."""
        if len(shape) != len(self.shape) or any(d is not None and d != s for d, s in zip(self.shape, shape)):
            want = ["*" if d is None else d for d in self.shape]
            return f"tensor {self.name!r} has shape {list(shape)}, the artifact expects {want}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Sidecar:
    """What an artifact takes and returns."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input_dtypes(self) -> list[tuple[str, str]]:
        """``(name, dtype)`` of each input: what :func:`codec.plan` takes."""
        return [(t.name, t.dtype) for t in self.inputs]

    def output_dtypes(self) -> list[tuple[str, str]]:
        """``(name, dtype)`` of each output (a head's outputs are what the wire carries)."""
        return [(t.name, t.dtype) for t in self.outputs]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "inputs": [t.to_json() for t in self.inputs],
                "outputs": [t.to_json() for t in self.outputs]}


def sidecar_path(artifact: str | Path) -> Path:
    """``head.pt2`` -> ``head.pt2.json``."""
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def spec(name: str, shape: Iterable[int | None], dtype: Any) -> TensorSpec:
    """A :class:`TensorSpec` from a torch/numpy dtype or its name (a negative dimension,
    as ``pytest_collab.split.export`` writes the batch, is dynamic like ``null``)."""
    return TensorSpec(str(name), tuple(None if d is None or int(d) < 0 else int(d) for d in shape),
                      str(dtype).removeprefix("torch."))


def write_sidecar(artifact: str | Path, inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec]) -> Path:
    """Write the sidecar of ``artifact``; return its path."""
    side = Sidecar(tuple(inputs), tuple(outputs))
    if not side.inputs or not side.outputs:
        raise ArtifactError(f"{artifact}: an artifact takes and returns at least one tensor")
    path = sidecar_path(artifact)
    path.write_text(json.dumps(side.to_json(), indent=1) + "\n")
    return path


def read_sidecar(artifact: str | Path) -> Sidecar:
    """The sidecar of ``artifact``; a missing or garbled one is an :class:`ArtifactError`."""
    path = sidecar_path(artifact)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no sidecar beside the artifact; whoever exports {Path(artifact).name} "
                            "writes it too (collab_devicekit.artifact.write_sidecar)") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not readable JSON ({exc})") from exc
    try:
        if raw.get("format", FORMAT) != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this kit reads format {FORMAT}")
        side = Sidecar(*(tuple(spec(t["name"], t["shape"], t["dtype"]) for t in raw[k]) for k in ("inputs", "outputs")))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: {type(exc).__name__} {exc}; expected "
                            '{"inputs": [{"name", "shape", "dtype"}], "outputs": [...]}') from exc
    if not side.inputs or not side.outputs:
        raise ArtifactError(f"{path}: 'inputs' and 'outputs' must each list at least one tensor")
    return side
