"""The controller half of a split run: prepare (export once, content-addressed), ship, score."""
from __future__ import annotations

import json

import numpy as np
import pytest
import toy_models

from pytest_collab import split
from pytest_collab.split import experiment

torch = pytest.importorskip("torch")


def test_prepare_ship_score_round_trip(tmp_path):
    model = toy_models.SkipNet().eval()
    images = split.synthetic(6, (3, 16, 16), seed=0)
    labels = np.arange(6) % 10
    analyses: dict = {}
    prep = experiment.prepare(model, "conv_a", "fp16", images, tmp_path, labels=labels, batch=2, analyses=analyses)
    assert prep.head.is_file() and prep.tail.is_file() and len(prep.boundary) == 2
    assert json.loads(prep.head.with_name("head.pt2.json").read_text())["inputs"][0]["dtype"] == "uint8"
    assert prep.boundary_bytes == 2 * 8 * 16 * 16 * 4 and prep.input_bytes == 3 * 16 * 16
    mtime = prep.tail.stat().st_mtime_ns
    again = experiment.prepare(model, "conv_a", "int8", images, tmp_path, labels=labels, batch=2, analyses=analyses)
    assert again.tail == prep.tail and again.tail.stat().st_mtime_ns == mtime   # exported once per cut

    remote = experiment.ship(lambda dev, p: f"/remote/{dev}/{p.name}", prep, "pi", "srv")
    assert remote == {"head": "/remote/pi/head.pt2", "head_sidecar": "/remote/pi/head.pt2.json",
                      "inputs": f"/remote/pi/{prep.inputs.name}", "tail": "/remote/srv/tail.pt2",
                      "tail_sidecar": "/remote/srv/tail.pt2.json"}

    # what the devices would do with the shipped files: head on the uint8 images, fp16 on the wire, tail
    head = torch.export.load(str(prep.head)).module()
    tail = torch.export.load(str(prep.tail)).module()
    x = torch.from_numpy(np.load(prep.inputs))
    with torch.no_grad():
        exact = torch.cat([tail(*head(x[i:i + 2])) for i in range(0, 6, 2)]).numpy()
        half = torch.cat([tail(*(t.half().float() for t in head(x[i:i + 2]))) for i in range(0, 6, 2)]).numpy()
    row = experiment.score(prep, exact)
    assert row["top1_agreement"] == 1.0 and row["max_logit_error"] <= 1e-6 and row["boundary_tensors"] == 2
    assert row["accuracy"] == row["accuracy_ref"]
    assert experiment.score(again, half)["max_logit_error"] > 0
    with pytest.raises(split.SplitError, match="shape"):
        experiment.score(prep, exact[:3])


def test_baselines_and_bad_input(tmp_path):
    model = toy_models.SkipNet().eval()
    images = split.synthetic(2, (3, 16, 16), seed=1)
    full = experiment.prepare(model, "full_offload", "raw", images, tmp_path)
    assert full.head is None and full.tail.is_file() and full.boundary_bytes == 3 * 16 * 16
    local = experiment.prepare(model, "on_device", "fp32", images, tmp_path)
    assert local.tail is None and local.head.is_file() and local.files("tail") == []
    with pytest.raises(split.SplitError, match="encoding 'fp16' cannot carry it"):
        experiment.prepare(model, "full_offload", "fp16", images, tmp_path)   # the image is uint8
    with pytest.raises(split.SplitError, match="uint8 images"):
        experiment.prepare(model, "conv_a", "fp16", images.astype(np.float32), tmp_path)
    with pytest.raises(split.PointError, match="nearest valid"):
        experiment.prepare(model, "conv_z", "fp16", images, tmp_path)
    with pytest.raises(split.SplitError, match="needs a 'server' device"):
        experiment.choose_devices({"rpi": ["pi1"]})
    assert experiment.choose_devices({"rpi": ["pi1"], "server": ["s1", "s2"]}) == ("pi1", "s1")


@pytest.fixture
def computed(monkeypatch):
    """Count the reference computations (each costs a forward over every input)."""
    calls: list[int] = []
    real = experiment._logits

    def counting(net, images, batch):
        calls.append(batch)
        return real(net, images, batch)

    monkeypatch.setattr(experiment, "_logits", counting)
    return calls


def test_reference_logits_are_computed_once_per_content(tmp_path, computed):
    """Every cut and encoding of a matrix shares the unsplit model's logits; they are keyed by
    content (weights, input bytes and shape, batch), so a second run computes nothing."""
    torch.manual_seed(0)
    model = toy_models.SkipNet().eval()
    images = split.synthetic(4, (3, 16, 16), seed=5)
    first = experiment.prepare(model, "conv_a", "fp16", images, tmp_path, batch=2)
    stamp = first.reference.stat().st_mtime_ns
    again = experiment.prepare(model, "on_device", "fp32", images.copy(), tmp_path, batch=2)
    assert again.reference == first.reference and again.reference.stat().st_mtime_ns == stamp
    assert computed == [2] and not list(tmp_path.rglob("*.tmp*")), "written once, renamed into place"

    other = toy_models.SkipNet().eval()
    with torch.no_grad():
        next(other.parameters()).add_(1.0)                      # other weights, same class
    seen = {first.reference}
    for change in [{"batch": 1}, {"model": other}, {"images": split.synthetic(4, (3, 16, 16), seed=6)},
                   {"images": images[:2].copy()},                                       # fewer images
                   {"images": images.reshape(4, 3, 8, 32).copy()}]:                     # same bytes, other shape
        args = {"model": model, "images": images, "batch": 2, **change}
        prep = experiment.prepare(args["model"], "on_device", "fp32", args["images"], tmp_path, batch=args["batch"])
        assert prep.reference not in seen, f"{sorted(change)} must miss the cache"
        seen.add(prep.reference)
    assert len(computed) == 6
