"""Exported head/tail artifacts: a fresh Python with torch alone loads them and they
reproduce the model; sidecars describe every tensor; dtypes the wire cannot carry are refused."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import toy_models

from pytest_collab import split
from pytest_collab.split.points import CutPoint, TensorSpec

torch = pytest.importorskip("torch")

# Runs in a fresh interpreter where pytest_collab cannot be imported: what a device has.
# One interpreter for every artifact pair (importing torch is the slow part).
DEVICE = r"""
import json, sys
sys.modules["pytest_collab"] = None
import torch
for job in json.load(open(sys.argv[1])):
    head = torch.export.load(job["head"]).module()
    tail = torch.export.load(job["tail"]).module()
    side = json.load(open(job["tail"] + ".json"))
    x = torch.load(job["x"])
    with torch.no_grad():
        mid = head(x)
        assert [list(t.shape[1:]) for t in mid] == [s["shape"][1:] for s in side["inputs"]]
        torch.save(tail(*mid), job["out"])
"""


def _splits():
    """(name, split, reference module, input shape): a stage cut, in-block cuts (export and fx
    capture), a manual one."""
    resnet = split.load_model("resnet18")
    toy = toy_models.SkipNet().eval()
    manual_head = torch.nn.Sequential(toy.stem)
    manual_tail = torch.nn.Sequential(toy.conv_a, torch.nn.ReLU(), toy.conv_b)
    yield "resnet18-layer2", split.cut(resnet, "layer2", split.example((3, 64, 64))), resnet, (3, 64, 64)
    yield "toy-conv_a", split.cut(toy, "conv_a", split.example((3, 16, 16))), toy, (3, 16, 16)
    yield "toy-fx-conv_b", split.cut(toy, "conv_b", split.example((3, 16, 16)), method="fx"), toy, (3, 16, 16)
    manual = split.manual(manual_head, manual_tail, split.example((3, 16, 16)))
    yield "manual", manual, torch.nn.Sequential(manual_head, manual_tail), (3, 16, 16)


@pytest.fixture(scope="module")
def on_device(tmp_path_factory):
    """Every split exported, then run by one fresh torch-only process on a batch of 3."""
    root = tmp_path_factory.mktemp("device")
    jobs, out = [], {}
    for name, s, ref_model, shape in _splits():
        paths = split.export(s, root / name)
        x = split.example(shape, n=3, seed=7)   # another batch size than at export: the batch is dynamic
        torch.save(x, root / f"{name}-x.pt")
        with torch.no_grad():
            ref = ref_model(x)
        jobs.append({"head": str(paths.head), "tail": str(paths.tail), "x": str(root / f"{name}-x.pt"),
                     "out": str(root / f"{name}-y.pt")})
        out[name] = (s, paths, ref, shape)
    (root / "jobs.json").write_text(json.dumps(jobs))
    subprocess.run([sys.executable, "-c", DEVICE, str(root / "jobs.json")], check=True, timeout=600, cwd=root)
    return {name: (*done, torch.load(root / f"{name}-y.pt")) for name, done in out.items()}


@pytest.mark.parametrize("name, tensors", [("resnet18-layer2", 1), ("toy-conv_a", 2), ("toy-fx-conv_b", 2),
                                           ("manual", 1)])
def test_exported_artifacts_reproduce_output_in_fresh_process(on_device, name, tensors):
    s, paths, ref, shape, got = on_device[name]
    assert len(s.boundary) == tensors
    assert float((got - ref).abs().max()) <= 1e-6
    head_side = json.loads(paths.head_sidecar.read_text())
    tail_side = json.loads(paths.tail_sidecar.read_text())
    assert head_side["role"] == "head" and tail_side["role"] == "tail" and tail_side["point"] == s.point.name
    assert head_side["inputs"] == [{"name": "x", "shape": [-1, *shape], "dtype": "float32"}]
    assert head_side["outputs"] == tail_side["inputs"] == [t.as_json() for t in s.boundary]
    assert len(tail_side["inputs"]) == tensors and all(t["shape"][0] == -1 for t in tail_side["inputs"])
    assert tail_side["outputs"][0]["shape"][0] == -1 and tail_side["outputs"][0]["shape"][1:] == list(ref.shape[1:])


def test_dtype_the_wire_cannot_carry_is_refused_at_export(tmp_path):
    model = toy_models.DoubleNet()
    analysis = split.analyse(split.capture(model, split.example((3, 8, 8))))
    doubles = [p for p in analysis.listed(nodes=True) if any(t.dtype == "float64" for t in p.boundary)]
    assert doubles
    s = split.cut(analysis, doubles[0])
    with pytest.raises(split.SplitError) as exc:
        split.export(s, tmp_path)
    assert "float64" in str(exc.value) and doubles[0].name in str(exc.value)
    assert not list(tmp_path.iterdir()), "nothing is written for a refused cut"
    ok = next(p for p in analysis.listed(nodes=True) if all(t.dtype == "float32" for t in p.boundary))
    split.export(split.cut(analysis, ok), tmp_path / "ok", encoding="int8")


def test_encoding_must_fit_the_crossing_dtype():
    point = CutPoint("argmax", 3, "argmax", "", (TensorSpec("idx", (-1, 4), "int64"),), depth=1)
    split.check_encodable(point, "raw")
    with pytest.raises(split.SplitError, match="int64; encoding 'fp16' cannot carry it \\(use raw\\)"):
        split.check_encodable(point, "fp16")


def test_captured_split_exports_without_retracing(tmp_path, monkeypatch):
    model = toy_models.SkipNet().eval()
    analysis = split.analyse(split.capture(model, split.example((3, 16, 16))))
    cuts = [split.cut(analysis, p) for p in analysis.listed()]

    def no_retrace(*args, **kwargs):
        raise AssertionError("torch.export.export was called: the program was re-traced, not assembled")

    monkeypatch.setattr(torch.export, "export", no_retrace)
    x = split.example((3, 16, 16), n=5, seed=3)
    with torch.no_grad():
        ref = model(x)
        for s in cuts:
            paths = split.export(s, tmp_path / s.point.name)
            head = torch.export.load(str(paths.head)).module()
            tail = torch.export.load(str(paths.tail)).module()
            assert torch.equal(tail(*head(x)), ref), s.point.name
