"""split_any's matrix: model x cut point x encoding, for any torchvision classifier or
``module:attr``. Cut points: the default is 2 spread over the model, ``auto`` 3, or names
(``full_offload`` and ``on_device`` are the baselines). Models are built and captured once
per session (``Subject``), here at collection so the points are test ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pytest_collab.session import collab_options_of
from pytest_collab.split.models import DEFAULT_MODEL

DEFAULT_POINTS = 2
AUTO_POINTS = 3
BASELINES = ("full_offload", "on_device")


@dataclass
class Subject:
    """One model as the tests use it: weights, inputs, labels, and its cut points."""

    name: str
    model: Any
    images: Any
    labels: Any
    points: list[str]
    trained_accuracy: float | None


def _subjects(config: pytest.Config) -> dict[str, Subject]:
    cached = getattr(config, "_split_any_subjects", None)
    if cached is None:
        cached = {}
        opt = collab_options_of(config).get
        for name in (m.strip() for m in (opt("split_model") or DEFAULT_MODEL).split(",") if m.strip()):
            cached[name] = _subject(name, opt)
        config._split_any_subjects = cached   # type: ignore[attr-defined]
    return cached


def _subject(name: str, opt: Any) -> Subject:
    import torch

    from pytest_collab import split
    from pytest_collab.split import digits
    from pytest_collab.split.models import parse_shape

    torch.set_num_threads(1)
    shape = parse_shape(opt("split_input"))
    samples = int(opt("split_samples") or 24)
    accuracy = None
    if opt("split_trained"):
        trained = digits.train(name, shape, seconds=float(opt("split_trained")))
        model, accuracy = trained.model.eval(), trained.accuracy
        images, labels = digits.images(shape, "holdout")
        images, labels = images[:samples], labels[:samples]
    else:
        model = split.load_model(name, weights=opt("split_weights"))
        images, labels = split.synthetic(samples, shape, seed=0), None
    wanted = opt("split_points")
    if wanted and wanted != "auto":
        points = [p.strip() for p in wanted.split(",") if p.strip()]
    else:
        k = AUTO_POINTS if wanted == "auto" else DEFAULT_POINTS
        points = [p.name for p in split.auto(split.with_preprocess(model), images[:2], k=k)]
    return Subject(name, model, images, labels, points, accuracy)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not {"subject", "point", "encoding"} <= set(metafunc.fixturenames):
        return
    opt = collab_options_of(metafunc.config).get
    encodings = [e.strip() for e in opt("split_encodings").split(",") if e.strip()]
    cases = []
    for name, subject in _subjects(metafunc.config).items():
        for point in subject.points:
            for encoding in (["fp32"] if point in BASELINES else encodings):
                cases.append(pytest.param(name, point, encoding, id=f"{name}-{point}-{encoding}"))
    metafunc.parametrize(("model", "point", "encoding"), cases)


@pytest.fixture
def subject(request: pytest.FixtureRequest, model: str) -> Subject:
    return _subjects(request.config)[model]
