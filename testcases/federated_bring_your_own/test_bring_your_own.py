"""federated_bring_your_own: a plain upstream Flower app (app/) run with pytest_collab.flower.

The app in ``app/`` knows nothing about pytest-collab (logistic regression on
scikit-learn's digits, after Flower's quickstart-sklearn); this test only says where it
runs. Copy this file next to your own app and change ``APP``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_collab import flower

APP = Path(__file__).parent / "app"
#: Server-side held-out accuracy of the global model after 2 rounds (measured 0.85
#: with 2 clients, 0.80 after round 1; seeded, room left for other devices).
ACCURACY_BOUND = 0.8


@pytest.mark.devices(server=1, rpi=2)
def test_digits_sklearn(collab):
    run = flower.run(collab, app=APP, server="server", clients="rpi", rounds=2, timeout=300)
    assert [r["round"] for r in run.rounds] == [0, 1, 2]
    assert run.rounds[-1]["server_accuracy"] >= ACCURACY_BOUND, run.rounds
    assert {c["client"] for c in run.clients} == {d.name for d in collab.devices["rpi"]}
