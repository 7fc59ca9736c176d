"""Cut points of any model: head then tail reproduces the model exactly in fp32 at every cut."""
from __future__ import annotations

import pytest
import toy_models

from pytest_collab import split

torch = pytest.importorskip("torch")


def analysed(model, shape):
    x = split.example(shape, n=2, seed=1)
    return split.analyse(split.capture(model, x)), x


def assert_every_cut_reproduces(analysis, x, cuts):
    model = analysis.captured.model
    with torch.no_grad():
        eager = model(x)
        captured = analysis.captured.gm(x)
        assert torch.equal(captured, eager), "the captured graph is not the model"
        for p in cuts:
            s = split.cut(analysis, p)
            mid = s.head(x)
            assert isinstance(mid, tuple) and len(mid) == len(p.boundary), p.name
            for t, spec in zip(mid, p.boundary):
                assert [d for d in t.shape[1:]] == [d for d in spec.shape[1:]] and str(t.dtype) == f"torch.{spec.dtype}"
            assert torch.equal(s.tail(*mid), eager), f"cut {p.name} changes the output"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_every_cut_of_torchvision_model_reproduces_output(name):
    analysis, x = analysed(split.load_model(name), (3, 64, 64))
    pts = analysis.listed()
    assert len(pts) > 40 and [p.index for p in pts] == sorted(p.index for p in pts)
    assert_every_cut_reproduces(analysis, x, pts)


def test_every_cut_of_own_module_with_skip_reproduces_output():
    analysis, x = analysed(toy_models.SkipNet(), (3, 16, 16))
    every_op = analysis.listed(nodes=True)
    assert len(every_op) == len(analysis.cuts)  # every op position is a valid cut here
    assert_every_cut_reproduces(analysis, x, every_op)


@pytest.mark.parametrize("name, size", [("efficientnet_b0", 64), ("vgg11", 64), ("vit_b_16", 224)])
def test_sampled_cuts_of_other_families_reproduce_output(name, size):
    analysis, x = analysed(split.load_model(name), (3, size, size))
    sample = split.spread(analysis.listed(), 3)
    assert len(sample) == 3
    assert_every_cut_reproduces(analysis, x, sample)


def test_cut_inside_residual_block_sends_branch_and_skip():
    analysis, x = analysed(split.load_model("resnet18"), (3, 64, 64))
    inside = analysis.resolve("layer1.0.conv1")
    assert len(inside.boundary) == 2
    assert {t.shape for t in inside.boundary} == {(-1, 64, 16, 16)}
    stage = analysis.resolve("layer1")
    assert len(stage.boundary) == 1 and stage.aliases == ("layer1.1", "layer1.1.relu")
    assert_every_cut_reproduces(analysis, x, [inside])
    own, xo = analysed(toy_models.SkipNet(), (3, 16, 16))
    cut = split.cut(own, "conv_a", xo)
    assert [t.shape for t in cut.boundary] == [(-1, 8, 16, 16), (-1, 8, 16, 16)]


def test_unknown_point_lists_valid_ones():
    analysis, _ = analysed(toy_models.SkipNet(), (3, 16, 16))
    with pytest.raises(split.PointError) as exc:
        split.cut(analysis, "conv_c")
    msg = str(exc.value)
    assert "'conv_c'" in msg and "conv_a" in msg and "conv_b" in msg and "head.1" in msg and "head.2" not in msg


def test_impossible_cut_names_point_and_nearest_valid_ones():
    analysis, x = analysed(toy_models.ChunkNet(), (3, 8, 8))
    bad = [c for c in analysis.cuts if not c.valid]
    assert bad, "a cut right after chunk/split must be impossible"
    with pytest.raises(split.PointError) as exc:
        split.cut(analysis, bad[0].node)
    msg = str(exc.value)
    assert bad[0].node in msg and "only tensors can be sent" in msg and "nearest valid points: conv" in msg
    assert all(c.valid for c in analysis.listed(nodes=True))
    assert_every_cut_reproduces(analysis, x, analysis.listed(nodes=True))


def test_auto_spreads_points_over_the_model():
    analysis, _ = analysed(split.load_model("resnet18"), (3, 64, 64))
    assert [p.name for p in split.auto(analysis, k=4)] == ["maxpool", "layer2", "layer3", "layer4"]


def test_fx_capture_where_export_is_not_wanted():
    x = split.example((3, 16, 16))
    analysis = split.analyse(split.capture(toy_models.SkipNet(), x, method="fx"))
    assert analysis.captured.method == "fx"
    names = [p.name for p in analysis.listed()]
    assert "stem" in names and "conv_a" in names
    assert len(analysis.resolve("conv_a").boundary) == 2
    assert_every_cut_reproduces(analysis, x, analysis.listed())


def test_model_no_capture_handles_names_the_op_and_the_way_out():
    with pytest.raises(split.CaptureError) as exc:
        split.capture(toy_models.BranchyNet(), split.example((3, 8, 8)))
    msg = str(exc.value)
    assert "torch.export" in msg and "torch.fx" in msg and "split.manual" in msg
    assert msg.count("in forward: if y.sum().item() > 0:") == 2  # the failing op, for both captures


def test_preprocessed_model_starts_from_image_bytes():
    model = toy_models.SkipNet().eval()
    images = split.synthetic(2, (3, 16, 16), seed=4)
    analysis = split.analyse(split.capture(split.with_preprocess(model), images))
    names = [p.name for p in analysis.listed()]
    assert names[:3] == ["preprocess", "stem.0", "stem.1"] and "conv_a" in names   # no "net." prefix
    assert analysis.captured.inputs[0].meta["val"].dtype == torch.uint8
    with torch.no_grad():
        expected = model(split.to_float(images))
        for p in analysis.listed():
            assert torch.equal(split.cut(analysis, p)(torch.from_numpy(images)), expected), p.name


def test_mutation_seen_by_another_op_is_functionalised():
    analysis, x = analysed(toy_models.InplaceNet(), (3, 8, 8))
    ops = [str(n.target) for n in analysis.captured.order]
    assert not any(op.split(".")[1].endswith("_") for op in ops if op.startswith("aten.")), ops
    assert_every_cut_reproduces(analysis, x, analysis.listed(nodes=True))
