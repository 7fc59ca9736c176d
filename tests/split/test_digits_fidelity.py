"""Honest fidelity: a model trained on scikit-learn's digits (no download), cached by content
hash; accuracy, top-1 agreement and logit error between logit arrays."""
from __future__ import annotations

import numpy as np
import pytest

from pytest_collab import split
from pytest_collab.split import digits, fidelity

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

SMALL = "pytest_collab.split.digits:SmallCNN"


def test_digits_training_learns_and_second_call_hits_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_COLLAB_CACHE", str(tmp_path))
    first = digits.train(SMALL, shape=(3, 16, 16), seconds=60, max_steps=80, seed=0)
    assert not first.cached and first.steps == 80 and first.path.is_file()
    assert first.path.parent == tmp_path / "digits"
    assert first.accuracy > 0.8, f"held-out accuracy {first.accuracy:.3f} (chance is 0.1)"
    again = digits.train(SMALL, shape=(3, 16, 16), seconds=60, max_steps=80, seed=0)
    assert again.cached and again.path == first.path and again.accuracy == first.accuracy
    x, y = digits.images((3, 16, 16), "holdout", seed=0)
    assert x.dtype == np.uint8 and x.shape == (len(y), 3, 16, 16)
    assert digits.evaluate(again.model, x, y) == first.accuracy   # the cached weights are the trained ones
    other = digits.cache_key(SMALL, (3, 16, 16), 1, 60, 80)
    assert other != digits.cache_key(SMALL, (3, 16, 16), 0, 60, 80) != digits.cache_key(SMALL, (3, 16, 16), 0, 30, 80)


def test_trained_model_split_keeps_accuracy(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_COLLAB_CACHE", str(tmp_path))
    trained = digits.train(SMALL, shape=(3, 16, 16), seconds=60, max_steps=40, seed=0)
    x, y = digits.images((3, 16, 16), "holdout", seed=0)
    inputs = split.to_float(x)
    s = split.cut(trained.model, "conv1", inputs[:2])
    with torch.no_grad():
        ref = trained.model(inputs).numpy()
        mid = s.head(inputs)
        exact = s.tail(*mid).numpy()
        half = s.tail(*(t.half().float() for t in mid)).numpy()    # what fp16 on the wire does
    row = fidelity.summary(ref, exact, y)
    assert row["top1_agreement"] == 1.0 and row["max_logit_error"] == 0.0
    assert row["accuracy"] == row["accuracy_ref"] == pytest.approx(trained.accuracy)
    lossy = fidelity.summary(ref, half, y)
    assert 0 < lossy["max_logit_error"] < 0.05 * np.abs(ref).max() and lossy["top1_agreement"] > 0.95


def test_fidelity_functions():
    ref = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0], [0.0, 0.0, 1.0]])
    other = ref + np.array([[0, 2.5, 0], [0, 0, 0], [0, 0, -0.5], [0, 0, 0]])
    assert fidelity.top1_agreement(ref, other) == 0.75
    err = fidelity.logit_error(ref, other)
    assert err["max_logit_error"] == 2.5 and err["mean_logit_error"] == pytest.approx(3.0 / 12)
    assert err["rel_logit_error"] == pytest.approx(2.5 / 4)
    assert fidelity.accuracy(ref, [0, 1, 2, 0]) == 0.75
    with pytest.raises(ValueError, match="differ in shape"):
        fidelity.top1_agreement(ref, ref[:2])


def test_local_weights_load_and_bad_ones_are_named(tmp_path):
    model = split.load_model("resnet18", seed=3)
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    again = split.load_model("resnet18", weights=path, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(split.SplitError, match="no such file"):
        split.load_model("resnet18", weights=tmp_path / "missing.pth")
    with pytest.raises(split.SplitError, match="does not fit"):
        split.load_model("mobilenet_v3_small", weights=path)
    with pytest.raises(split.SplitError, match="nearest torchvision names: .*mobilenet_v3_small"):
        split.load_model("mobilenet_v3_smal")
