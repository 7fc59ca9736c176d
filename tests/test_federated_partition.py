"""The federated partitioner, data split, round policy and report sections (pure parts)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

CASE = Path(__file__).resolve().parents[1] / "testcases" / "federated"
sys.path.insert(0, str(CASE / "app"))

from fedlab.data import client_data, load  # noqa: E402
from fedlab.partition import dirichlet_partition, iid_partition, label_skew  # noqa: E402
from fedlab.policy import NO_REPLY, TooFewClients, check_quorum, collect  # noqa: E402


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return load("digits", seed=0)[0].y


def mean_skew(labels: np.ndarray, alpha: float | None, n: int = 4, seeds: int = 10) -> float:
    parts = [iid_partition(len(labels), n, s) if alpha is None
             else dirichlet_partition(labels, n, alpha, s) for s in range(seeds)]
    return float(np.mean([label_skew(labels, p) for p in parts]))


def test_label_skew_grows_as_alpha_shrinks(labels):
    # Measured (4 clients, 10 seeds): alpha 100: 0.03, 10: 0.10, 1: 0.29, 0.3: 0.46,
    # 0.1: 0.61; IID shuffle: 0.06 (sampling noise, above alpha=100's near-exact shares).
    skews = [mean_skew(labels, a) for a in (100.0, 10.0, 1.0, 0.3, 0.1)]
    assert skews == sorted(skews) and skews[-1] > skews[0] + 0.4, skews
    assert mean_skew(labels, None) < 0.1 < skews[2]


@pytest.mark.parametrize("alpha", [None, 0.1, 0.5, 5.0])
@pytest.mark.parametrize("n", [2, 4, 7])
def test_partitions_are_disjoint_and_cover(labels, alpha, n):
    parts = (iid_partition(len(labels), n, 3) if alpha is None
             else dirichlet_partition(labels, n, alpha, 3))
    joined = np.concatenate(parts)
    assert len(parts) == n and len(joined) == len(set(joined.tolist())) == len(labels)
    assert min(len(p) for p in parts) >= 10


def test_same_seed_same_split_other_seed_other_split(labels):
    a, b = dirichlet_partition(labels, 4, 0.5, 1), dirichlet_partition(labels, 4, 0.5, 1)
    c = dirichlet_partition(labels, 4, 0.5, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_impossible_requests_say_what_to_change(labels):
    with pytest.raises(ValueError, match="lower the client count"):
        dirichlet_partition(labels[:30], 4, 0.5, 0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        dirichlet_partition(labels, 2, 0.0, 0)


def test_held_out_set_is_stratified_and_clients_never_see_it():
    pool, held = load("digits", seed=0)
    assert len(pool) + len(held) == 1797
    assert np.bincount(held.y).min() >= 30          # ~36 per class
    pool_rows = {r.tobytes() for r in pool.x}
    train, val = client_data("digits", 0, 1, 2, None)
    assert {r.tobytes() for r in train.x} <= pool_rows and {r.tobytes() for r in val.x} <= pool_rows
    assert len(train) + len(val) == len(iid_partition(len(pool), 2, 0)[1])
    with pytest.raises(ValueError, match="node-config"):
        client_data("digits", 0, 2, 2, None)


def _msg(node: int, error: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(metadata=SimpleNamespace(src_node_id=node),
                           has_error=lambda: error is not None,
                           error=SimpleNamespace(code=1, reason=error))


def test_policy_names_lost_clients_and_respects_the_minimum():
    out = collect([1, 2, 3], [_msg(1), _msg(2, "ClientApp crashed")])
    assert set(out.ok) == {1} and out.failed == {2: "error 1: ClientApp crashed", 3: NO_REPLY}
    names = {1: "rpi-1", 2: "rpi-2", 3: "rpi-3"}
    check_quorum("fit", 2, out, names, minimum=1)
    with pytest.raises(TooFewClients) as exc:
        check_quorum("fit", 2, out, names, minimum=2)
    text = str(exc.value)
    assert "round 2 fit: only 1 of 3" in text and "min-fit-clients=2" in text
    assert "rpi-2: error 1: ClientApp crashed" in text and f"rpi-3: {NO_REPLY}" in text


def test_report_sections_render_curves_and_stragglers():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    from pytest_collab.flower import report as rs  # what testcases/federated/report_sections.py imports
    from pytest_collab.report.sections import registered_sections

    assert {"Federated: metrics per round", "Federated: per-client time per round"} <= \
        {sec.name for sec in registered_sections()}
    base = {"test": "t::clients2", "testcase": "renamed", "clients": 2, "alpha": None, "rounds": 2}
    rows = [dict(base, kind="round", round=r, global_accuracy=0.1 + 0.4 * r, global_loss=2.0 - r)
            for r in range(3)]
    rows += [dict(base, kind="client", round=r, client=c, train_time_s=t * r, status="ok")
             for r in (1, 2) for c, t in (("rpi-1", 0.2), ("rpi-2", 0.9))]
    df = pd.DataFrame(rows)
    assert rs.has_rounds(df, {}) and not rs.has_rounds(df[df.kind == "client"].drop(columns="kind"), {})
    curves = rs.learning_curves(df, None, {})
    acc = [ax for ax in curves[0].axes if ax.get_title() == "global_accuracy"][0]
    assert len(acc.lines) == 1 and list(acc.lines[0].get_ydata()) == [0.1, 0.5, 0.9]
    items = rs.stragglers(df, None, {})
    assert "rpi-2" in items[1]
