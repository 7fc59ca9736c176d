"""split_resnet's stages as the split library's cut points: each is one tensor at the end of
its module, and the exported layer2 artifacts join exactly and keep the codec's bounds."""
from __future__ import annotations

import numpy as np
import pytest
import split_helpers

from pytest_collab import split
from pytest_collab.devicekit import codec
from pytest_collab.split import experiment

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

case = split_helpers.load_case_module("test_split_resnet")


@pytest.fixture(scope="module")
def resnet18():
    torch.set_num_threads(1)
    return split.load_model("resnet18", seed=0)


@pytest.fixture(scope="module")
def analysis(resnet18):
    return split.analyse(split.capture(split.with_preprocess(resnet18), split.synthetic(2, (3, 64, 64), seed=3)))


@pytest.mark.parametrize(("stage", "module", "shape"), [
    ("stem", "maxpool", (64, 16, 16)), ("layer1", "layer1", (64, 16, 16)), ("layer2", "layer2", (128, 8, 8)),
    ("layer3", "layer3", (256, 4, 4)), ("layer4", "layer4", (512, 2, 2))])
def test_each_stage_is_one_tensor_at_its_module_end(analysis, stage, module, shape):
    point = analysis.resolve(case.STAGE_POINTS.get(stage, stage))
    assert point.name == module
    assert [t.shape[1:] for t in point.boundary] == [shape]      # batch left out


def test_stage_points_come_in_execution_order(analysis):
    stages = ("stem", "layer1", "layer2", "layer3", "layer4")
    indices = [analysis.resolve(case.STAGE_POINTS.get(s, s)).index for s in stages]
    assert indices == sorted(indices) and len(set(indices)) == len(stages)


def test_exported_layer2_joins_exactly_and_bounds_hold(tmp_path, resnet18):
    images = split.synthetic(2, (3, 224, 224), seed=3)
    prep = experiment.prepare(resnet18, "layer2", "int8", images, tmp_path, batch=2)
    head = torch.export.load(str(prep.head)).module()
    tail = torch.export.load(str(prep.tail)).module()
    ref = torch.from_numpy(np.load(prep.reference))
    with torch.no_grad():
        (act,) = head(torch.from_numpy(images))
        assert torch.equal(tail(act), ref)
        # the encodings on a real activation: the bounds docs/split_resnet.md states
        for enc, bound in (("fp16", 0.05), ("int8", 0.5)):
            data, meta = codec.pack(act.numpy(), enc, codec.Compression())
            out = tail(torch.from_numpy(codec.unpack(data, meta).copy()))
            err = float((out - ref).abs().max())
            assert 0 < err <= bound * float(ref.abs().max()), f"{enc}: max logit error {err}"
    assert [list(t.shape) for t in prep.boundary] == [[-1, 128, 28, 28]] and prep.input_bytes == 224 * 224 * 3


def test_a_model_without_the_stage_lists_the_valid_points():
    model = split.load_model("mobilenet_v3_small")
    with pytest.raises(split.PointError, match="features"):
        split.cut(split.with_preprocess(model), "layer2", split.synthetic(2, (3, 32, 32)))
