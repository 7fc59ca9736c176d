"""The controller half of a split run: everything but the devices.

``split.run(collab, model, point=..., encoding=..., inputs=...)`` is, on the controller::

    prepared = prepare(model, point, encoding, inputs, outdir)   # artifacts, inputs, reference
    head_dev, tail_dev = choose_devices(collab.devices)          # "rpi"/"server" kinds by default
    remote = ship(collab.put, prepared, head_dev, tail_dev)      # paths on the devices
    ... the device kit's split_tail / split_head programs run ... # returns logits (N, classes)
    row = score(prepared, logits)                                # fidelity columns of the row

:func:`prepare` is content-addressed: the same weights, input shape and point reuse the
artifacts already written under ``outdir``, so a matrix of encodings exports once per cut.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pytest_collab.split.errors import SplitError
from pytest_collab.split.points import TensorSpec

BASELINES = ("full_offload", "on_device")


@dataclass(frozen=True)
class Prepared:
    """Files a split run ships, and what scoring needs. ``head``/``tail`` is None for the
    side a baseline does not have (on_device has no tail)."""

    point: str
    encoding: str
    head: Path | None
    tail: Path | None
    inputs: Path                       # uint8 images (N, C, H, W), .npy
    reference: Path                    # the unsplit model's logits on them at ``batch``, .npy
    labels: Path | None
    batch: int
    boundary: tuple[TensorSpec, ...] = ()
    input_bytes: int = 0               # one uint8 image, the full-offload payload
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def boundary_bytes(self) -> int:
        """fp32 bytes per sample crossing the cut (the uint8 image for full offload)."""
        if self.point == "full_offload":
            return self.input_bytes
        return sum(t.elements * 4 for t in self.boundary)

    def files(self, side: str) -> list[Path]:
        """The files one side needs: its artifact and sidecar; the head side also the inputs."""
        art = self.head if side == "head" else self.tail
        out = [art, art.with_name(art.name + ".json")] if art is not None else []
        return out + ([self.inputs] if side == "head" else [])


def model_digest(model: Any, shape: tuple[int, ...]) -> str:
    """Content hash of a model (class, parameters, buffers) and its input shape."""
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}:{list(shape)}".encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def prepare(model: Any, point: str, encoding: str, inputs: np.ndarray, outdir: str | Path, *,
            labels: Any = None, batch: int = 1, analyses: dict[str, Any] | None = None) -> Prepared:
    """Export ``model`` (behind :func:`with_preprocess`) cut at ``point``, and write the uint8
    ``inputs`` and the unsplit model's reference logits, all under ``outdir/<digest>/``.

    ``point`` is a cut point name or a baseline (``full_offload``, ``on_device``). The
    encoding is checked against the crossing dtypes here, before any device starts.
    ``analyses`` (a dict the caller keeps, e.g. in ``config.stash``) saves re-capturing.
    """
    import torch

    from pytest_collab.split import capture, cut, export, manual
    from pytest_collab.split.export import check_encodable
    from pytest_collab.split.models import with_preprocess
    from pytest_collab.split.points import analyse

    images = np.ascontiguousarray(inputs)
    if images.dtype != np.uint8 or images.ndim < 2:
        raise SplitError(f"inputs must be uint8 images (N, C, H, W) such as split.synthetic() makes, "
                         f"not {images.dtype} {images.shape}")
    shape = tuple(int(s) for s in images.shape[1:])
    digest = model_digest(model, shape)
    root = Path(outdir).resolve() / digest
    root.mkdir(parents=True, exist_ok=True)
    net = with_preprocess(model.eval())
    inputs_path = _save_once(root / f"inputs-{_array_digest(images)}.npy", images)
    reference = root / f"reference-b{batch}-{inputs_path.stem.split('-')[-1]}.npy"
    if not reference.exists():
        _save_once(reference, _logits(net, images, batch))
    labels_path = _save_once(root / f"labels-{inputs_path.stem.split('-')[-1]}.npy",
                             np.asarray(labels)) if labels is not None else None
    input_bytes = int(np.prod(shape))

    if point in BASELINES:
        folder = root / point
        x = torch.from_numpy(images[:2].copy())
        if point == "full_offload":
            s = manual(_identity(), net, x, name=point)
            check_encodable(s, encoding)
        else:
            s = manual(net, _identity(), x, name=point)
        if not (folder / "tail.pt2.json").exists():
            export(s, folder)
        head = None if point == "full_offload" else folder / "head.pt2"
        tail = None if point == "on_device" else folder / "tail.pt2"
        return Prepared(point, encoding, head, tail, inputs_path, reference, labels_path, batch,
                        (TensorSpec("image", (-1, *shape), "uint8"),) if point == "full_offload" else (),
                        input_bytes)

    store = analyses if analyses is not None else {}
    if digest not in store:
        store[digest] = analyse(capture(net, images[:2]))
    analysis = store[digest]
    cut_point = analysis.resolve(point)
    check_encodable(cut_point, encoding)
    folder = root / cut_point.name
    if not (folder / "tail.pt2.json").exists():
        export(cut(analysis, cut_point), folder)
    return Prepared(cut_point.name, encoding, folder / "head.pt2", folder / "tail.pt2", inputs_path, reference,
                    labels_path, batch, cut_point.boundary, input_bytes)


def choose_devices(devices: dict[str, list[Any]], head: str = "rpi", tail: str = "server") -> tuple[Any, Any]:
    """The first device selected as ``head`` kind/tag and the first as ``tail``."""
    for role in (head, tail):
        if not devices.get(role):
            raise SplitError(f"a split run needs a {role!r} device; mark the test "
                             f"@pytest.mark.devices({head}=1, {tail}=1) (selected: {', '.join(devices) or 'none'})")
    return devices[head][0], devices[tail][0]


def ship(put: Callable[[Any, Path], str], prepared: Prepared, head_device: Any, tail_device: Any) -> dict[str, str]:
    """Copy each side's files to its device with ``put`` (``collab.put``); returns the remote
    paths by role: head, head_sidecar, inputs, tail, tail_sidecar (absent sides left out)."""
    remote: dict[str, str] = {}
    for side, device in (("head", head_device), ("tail", tail_device)):
        for path in prepared.files(side):
            key = "inputs" if path == prepared.inputs else side + ("_sidecar" if path.suffix == ".json" else "")
            remote[key] = put(device, path)
    return remote


def score(prepared: Prepared, logits: Any) -> dict[str, Any]:
    """The row's fidelity and size columns, from the logits the tail (or the head) returned."""
    from pytest_collab.split.fidelity import summary

    reference = np.load(prepared.reference)
    got = np.asarray(logits)
    if got.shape != reference.shape:
        raise SplitError(f"the devices returned logits of shape {got.shape}; the reference for "
                         f"{prepared.inputs.name} has {reference.shape} (all inputs, batch {prepared.batch})")
    labels = np.load(prepared.labels) if prepared.labels is not None else None
    row: dict[str, Any] = {"point": prepared.point, "encoding": prepared.encoding,
                           "boundary_tensors": len(prepared.boundary), "boundary_bytes": prepared.boundary_bytes,
                           "boundary_vs_input": prepared.boundary_bytes / prepared.input_bytes,
                           "boundary_shapes": json.dumps([list(t.shape) for t in prepared.boundary])}
    row.update(summary(reference, got, labels))
    return row


def _identity() -> Any:
    import torch

    return torch.nn.Identity()


def _logits(net: Any, images: np.ndarray, batch: int) -> np.ndarray:
    """The unsplit model at the devices' batch size (oneDNN's kernels depend on it)."""
    import torch

    outs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            outs.append(net(torch.from_numpy(images[start:start + batch].copy())).numpy())
    return np.concatenate(outs)


def _array_digest(arr: np.ndarray) -> str:
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:12]


def _save_once(path: Path, arr: np.ndarray) -> Path:
    if not path.exists():
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)
    return path
