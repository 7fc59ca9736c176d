"""splitting.reference_logits: computed once per content key, recomputed when any part changes."""
from __future__ import annotations

import numpy as np
import pytest
import split_helpers

inputs = split_helpers.load_case_module("inputs")
splitting = split_helpers.load_case_module("splitting")

torch = pytest.importorskip("torch")


@pytest.fixture
def builds(monkeypatch):
    """Count model builds; the net is a cheap stand-in (the real one: test_split_model)."""
    calls: list[tuple] = []

    def build(name, weights=None, seed=0):
        calls.append((name, weights, seed))
        return name

    monkeypatch.setattr(splitting, "build_model", build)
    monkeypatch.setattr(splitting, "full_model", lambda model: lambda x: x.float().mean(dim=(1, 2)) + len(calls))
    return calls


def test_second_run_hits_the_cache(tmp_path, builds):
    imgs = inputs.synthetic(4, seed=5)
    first = splitting.reference_logits("resnet18", imgs, 2, tmp_path)
    stamp = first.stat().st_mtime_ns
    again = splitting.reference_logits("resnet18", imgs.copy(), 2, tmp_path)
    assert again == first and len(builds) == 1 and again.stat().st_mtime_ns == stamp
    assert np.load(again).shape == (4, 3)
    assert not list(tmp_path.glob("*.tmp*")), "the temporary file is renamed into place"


def test_every_key_part_misses(tmp_path, builds):
    imgs = inputs.synthetic(4, seed=5)
    w1, w2 = tmp_path / "w1.pth", tmp_path / "w2.pth"
    w1.write_bytes(b"weights one")
    w2.write_bytes(b"weights two")
    base = dict(model_name="resnet18", images=imgs, batch=2, outdir=tmp_path, weights=str(w1), seed=0)
    seen = {splitting.reference_logits(**base)}
    changes = [{"model_name": "resnet50"}, {"batch": 1}, {"weights": str(w2)}, {"weights": None},
               {"weights": None, "seed": 1},  # the seed matters without weights (they replace every tensor)
               {"images": inputs.synthetic(4, seed=6)},                       # other pixels
               {"images": imgs.reshape(2, 2, *imgs.shape[1:])[0].copy()},      # fewer images
               {"images": imgs.reshape(4, imgs.shape[1] // 2, imgs.shape[2] * 2, 3)}]  # same bytes, other shape
    for change in changes:
        path = splitting.reference_logits(**{**base, **change})
        assert path not in seen, f"{sorted(change)} must miss the cache"
        seen.add(path)
    assert len(builds) == 1 + len(changes)


def test_weights_are_keyed_by_content_not_by_mtime(tmp_path, builds):
    imgs = inputs.synthetic(2, seed=5)
    w = tmp_path / "w.pth"
    w.write_bytes(b"same bytes")
    first = splitting.reference_logits("resnet18", imgs, 2, tmp_path, str(w))
    copy = tmp_path / "copy.pth"
    copy.write_bytes(b"same bytes")
    assert splitting.reference_logits("resnet18", imgs, 2, tmp_path, str(copy)) == first
    w.write_bytes(b"new bytes!")   # same size, new content
    assert splitting.reference_logits("resnet18", imgs, 2, tmp_path, str(w)) != first
    assert len(builds) == 2
