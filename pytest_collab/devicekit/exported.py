"""Load an exported head or tail (``torch.export`` ``.pt2`` + its sidecar) as a function of
numpy arrays, so the programs never see torch.

The artifact is called with its inputs in the sidecar's order and may return one tensor
or a tuple of them; the result is always a list. Arrays that arrive in another float
dtype than the sidecar's (fp16/int8 decode to float32) are cast back; a wrong count or
shape is a ValueError naming the tensor (the tail turns it into an error reply).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .artifact import ArtifactError, Sidecar, read_sidecar
from .needs import require


class Exported:
    """A loaded artifact: ``exported(arrays) -> list of arrays``."""

    def __init__(self, path: str | Path, program: str, threads: int = 0) -> None:
        require(program, "torch")
        import torch

        self.path = Path(path)
        if not self.path.is_file():
            raise SystemExit(f"{program}: artifact {self.path} is missing; the controller writes it "
                             "(and its sidecar) before starting this program")
        try:
            self.sidecar: Sidecar = read_sidecar(self.path)
        except ArtifactError as exc:
            raise SystemExit(f"{program}: {exc}") from None
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.module = torch.export.load(str(self.path)).module()

    def _tensor(self, arr: np.ndarray, spec_index: int):
        spec = self.sidecar.inputs[spec_index]
        problem = spec.mismatch(arr.shape)
        if problem:
            raise ValueError(f"{self.path.name}: {problem}")
        if arr.dtype != np.dtype(spec.dtype):
            arr = arr.astype(spec.dtype)
        # A received, uncompressed tensor is a view of the message (read-only): torch warns
        # on those, so only that case pays a copy.
        arr = np.ascontiguousarray(arr) if arr.flags.writeable else np.array(arr)
        return self._torch.from_numpy(arr)

    def __call__(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        want = self.sidecar.inputs
        if len(arrays) != len(want):
            raise ValueError(f"{self.path.name} takes {len(want)} tensors ({', '.join(t.name for t in want)}), "
                             f"got {len(arrays)}")
        args = [self._tensor(a, i) for i, a in enumerate(arrays)]
        with self._torch.inference_mode():
            out = self.module(*args)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return [o.detach().numpy() for o in outs]

    def zeros(self, batch: int = 1) -> list[np.ndarray]:
        """Zeros of the artifact's input shapes (warm-up)."""
        return [np.zeros(t.concrete(batch), np.dtype(t.dtype)) for t in self.sidecar.inputs]
