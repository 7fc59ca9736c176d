"""``collab split points`` / ``collab split export`` as a user runs them."""
from __future__ import annotations

import json

import pytest

from pytest_collab.cli import main

torch = pytest.importorskip("torch")


def test_points_of_own_module_prints_every_cut(capsys):
    assert main(["split", "points", "toy_models:SkipNet", "--input", "3,16,16"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("toy_models:SkipNet: input 3x16x16 uint8 = 768 bytes/sample; captured with "
                               "torch.export; 7 cut points")
    rows = {ln.split()[1]: ln.split() for ln in lines[2:-1]}
    assert list(rows) == ["stem.0", "stem.1", "stem", "conv_a", "conv_b", "head.0", "head.1"]
    # inside the block the branch and the skip cross: 2 tensors, 2 x 8x16x16 fp32 = 4096 bytes
    assert rows["conv_a"][2:] == ["2", "8x16x16", "+", "8x16x16", "16,384", "21.33"]
    assert rows["stem"][2:] == ["1", "8x16x16", "8,192", "10.67"]
    assert rows["head.1"][2:] == ["1", "32", "128", "0.17"]
    assert "2 of 7 cuts send more than one tensor" in lines[-1]


def test_points_json_auto_and_depth(capsys):
    assert main(["split", "points", "resnet18", "--input", "3,64,64", "--json", "--auto", "4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["points"]] == ["maxpool", "layer2", "layer3", "layer4"]
    assert doc["input_uint8_bytes"] == 3 * 64 * 64 and doc["points"][1]["shapes"] == ["128x8x8"]
    assert doc["points"][1]["fp32_bytes"] == 128 * 8 * 8 * 4


def test_export_writes_artifacts(tmp_path, capsys):
    assert main(["split", "export", "toy_models:SkipNet", "conv_b", str(tmp_path), "--input", "3,16,16"]) == 0
    out = capsys.readouterr().out
    assert "cut at conv_b (2 tensor(s): 8x16x16, 8x16x16)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.pt2", "head.pt2.json", "tail.pt2", "tail.pt2.json"]


@pytest.mark.parametrize("argv, expected", [
    (["split", "points", "toy_models:Nope"], "has no attribute 'Nope'"),
    (["split", "points", "resnet181"], "nearest torchvision names: resnet18"),
    (["split", "points", "resnet18", "--input", "3,x,64"], "--input '3,x,64'"),
    (["split", "export", "toy_models:SkipNet", "conv_c", "out", "--input", "3,16,16"], "no cut point 'conv_c'"),
])
def test_bad_input_is_one_clear_line(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("collab split: error: ")]   # one convention: cli/__init__.py
    assert len(errors) == 1 and expected in errors[0], err
