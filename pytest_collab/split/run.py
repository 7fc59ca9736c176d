"""``split.run``: one split-inference measurement on the lab in one call.

A test writes ``row = split.run(collab, model, point="features.4", encoding="fp16")``
and gets what split_resnet's hundred lines did: the cut exported once (content-addressed,
:func:`~pytest_collab.split.experiment.prepare`), a bad point or an encoding the boundary
cannot carry refused *before any device starts*, the artifacts shipped, the device kit's
``split_tail`` (server) and ``split_head`` (edge) started as modules, and one summary row
(latency percentiles, the device's own per-query timestamps, bytes, fidelity) recorded.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from pytest_collab.split.errors import SplitError
from pytest_collab.split.experiment import Prepared, prepare, score, ship

TAIL = "module:collab_devicekit.split_tail"
HEAD = "module:collab_devicekit.split_head"
READY = r"READY port=(\d+)"            # collab_devicekit.tail_service.READY_PATTERN
LOGITS_ON_THE_LINE = 512 * 1024        # larger logits stay on the device (the row is one line)

# Captured graphs by model digest: capturing costs more than cutting, so a matrix of
# points and encodings over one model captures it once per session.
_ANALYSES: dict[str, Any] = {}


def run(collab: Any, model: Any, *, point: str, encoding: str = "fp32", inputs: Any = None,
        labels: Any = None, name: str | None = None, head: Any = None, tail: Any = None,
        batch: int = 1, mode: str = "single", rate: float = 10.0, outdir: str | Path | None = None,
        head_args: tuple[str, ...] = (), timeout: float = 600.0, record: bool = True,
        **columns: Any) -> dict[str, Any]:
    """Run ``model`` cut at ``point`` between an edge device and a server; return the row.

    ``point``: a cut point (see ``split.points``) or ``"full_offload"`` / ``"on_device"``.
    ``inputs``: uint8 images (N, C, H, W), default ``split.synthetic(32, (3, 224, 224))``;
    ``labels`` (N,) add held-out ``accuracy``. ``head``/``tail``: a kind/tag or device
    (default: the first selected kind that is not ``server``, and ``server``). ``columns``
    (e.g. ``lab="bench-2"``) are recorded as given;
    a column the head reports itself keeps the head's value. ``record=False`` only returns the row.
    """
    from pytest_collab.split.models import synthetic

    images = synthetic(32, (3, 224, 224), seed=0) if inputs is None else inputs
    param = collab.params.get("model")
    label = name or (param if isinstance(param, str) else type(model).__name__)
    # everything the controller can refuse, it refuses here: no device has started yet
    # the full-offload head sends the uint8 image as it is, whatever the cuts' encoding
    prep = prepare(model, point, "raw" if point == "full_offload" else encoding, images,
                   outdir or Path(collab.run_dir) / "split-artifacts", labels=labels, batch=batch,
                   analyses=_ANALYSES)
    head_dev, tail_dev = _devices(collab, head, tail, prep)
    remote = ship(collab.put, prep, head_dev, tail_dev)

    argv = ["--inputs", remote["inputs"], "--reference", collab.put(head_dev, prep.reference),
            "--batch", str(batch), "--mode", mode, "--rate", str(rate), "--model", label, "--split", prep.point]
    if prep.head is not None:
        argv += ["--artifact", remote["head"]]
    if prep.tail is not None and prep.head is not None:
        argv += ["--encoding", encoding]
    if np.load(prep.reference, mmap_mode="r").nbytes <= LOGITS_ON_THE_LINE:
        argv.append("--logits")
    server = None
    if prep.tail is not None:
        address = collab.device(tail_dev).address
        server = collab.start(tail_dev, TAIL, "--artifact", remote["tail"], "--bind", address, "--port", "0",
                              ready=READY)
        argv += ["--server", f"{server.address}:{server.match[1]}"]
    client = collab.start(head_dev, HEAD, *argv, *head_args, after=server)
    client.wait(timeout=timeout)
    rows = client.results()
    if len(rows) != 1:
        raise SplitError(f"split_head on {collab.device(head_dev).name!r} printed {len(rows)} COLLAB_RESULT "
                         "rows, expected 1 (its log is in the run folder)")
    row = _row(rows[0], prep, label, point, encoding, columns)
    if record:
        collab.record(**{k: v for k, v in row.items() if k not in collab.params})
    return row


def _devices(collab: Any, head: Any, tail: Any, prep: Prepared) -> tuple[Any, Any]:
    """The edge (head) and server (tail) targets; the tail only when the point has one."""
    tail = tail or "server"
    if head is None:
        edge = [kind for kind in collab.devices if kind != tail]
        if not edge:
            raise SplitError(f"split.run needs an edge device besides {tail!r}: mark the test "
                             f"@pytest.mark.devices(rpi=1, {tail}=1) (selected: {', '.join(collab.devices) or 'none'})")
        head = edge[0]
    collab.device(head)             # a clear error naming the kinds selected
    if prep.tail is None:
        return head, None
    collab.device(tail)
    return head, tail


def _row(device_row: dict[str, Any], prep: Prepared, label: str, point: str, encoding: str,
         columns: dict[str, Any]) -> dict[str, Any]:
    """The head's summary with the run's labels, the boundary and the controller's fidelity."""
    row = dict(device_row)
    row.pop("split", None)
    row["wire_encoding"] = row.pop("encoding", encoding)     # raw / none for the baselines
    packed, shape = row.pop("logits_b64", None), row.pop("logits_shape", None)
    labels = {"model": label, "point": point, "encoding": encoding, "cut_index": _index(prep), **columns}
    if packed is not None:
        logits = np.frombuffer(base64.b64decode(packed), dtype=np.float32).reshape(shape)
        scored = score(prep, logits)
        scored["cut_point"] = scored.pop("point")
        scored.pop("encoding")
        row.update(scored)
    else:   # logits too large for the line: the device's own comparison with the reference
        row.update(cut_point=prep.point, boundary_tensors=len(prep.boundary), boundary_bytes=prep.boundary_bytes,
                   boundary_vs_input=prep.boundary_bytes / prep.input_bytes,
                   max_logit_error=row.get("max_abs_logit_error"))
    return {**labels, **row}


def _index(prep: Prepared) -> int | None:
    """Where the cut sits in execution order (the report's x axis): -1 for full offload,
    None for on-device (after everything)."""
    if prep.point == "full_offload":
        return -1
    analysis = _ANALYSES.get(prep.inputs.parent.name)    # prepare's folder is the model digest
    return None if analysis is None or prep.point == "on_device" else int(analysis.resolve(prep.point).index)
