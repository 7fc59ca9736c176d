"""The metrics writer's buffers: add_rows' shared codes and fallbacks, add_samples' packed
values and row order, and what a rejected call leaves behind (nothing)."""
from __future__ import annotations

from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from pytest_collab.errors import CollabError  # noqa: E402
from pytest_collab.results.metrics import MetricsWriter, metrics_schema  # noqa: E402

NAMES = metrics_schema().names


def rows_of(path: Path) -> list[tuple]:
    """Every row in file order, timestamps as integer microseconds."""
    t = pq.read_table(path)
    cols = {n: t.column(n).to_pylist() for n in t.column_names}
    cols["timestamp"] = t.column("timestamp").cast(pa.int64()).to_pylist()
    return list(zip(*(cols[n] for n in NAMES)))


def columns(rows: list[tuple]) -> dict[str, list]:
    """add_rows columns of ``rows`` (timestamps given in microseconds, passed as seconds)."""
    cols = dict(zip(NAMES, map(list, zip(*rows))))
    cols["timestamp"] = [us / 1e6 for us in cols["timestamp"]]
    return cols


def some_rows(n: int, test: str, pid: int | None = 7) -> list[tuple]:
    return [("r", test, f"dev{i % 3}", "p", pid, 1_700_000_000_000_000 + i * 1000,
             f"m{i % 4}", float(i), "s") for i in range(n)]


def test_add_rows_calls_of_one_flush_mix_coded_and_general_columns(tmp_path: Path) -> None:
    """Plain lists share the flush's codes; None in a text column or a pid, or Arrow input,
    takes the general encoders: one row group still reads back row for row."""
    plain, with_none, arrow = some_rows(3000, "a"), some_rows(2500, "b", pid=None), some_rows(3000, "c")
    with_none[5] = (None, *with_none[5][1:])
    arrow_cols = columns(arrow)
    arrow_cols["test"] = pa.array(arrow_cols["test"])
    arrow_cols["value"] = pa.array(arrow_cols["value"])
    path = tmp_path / "m.parquet"
    with MetricsWriter(path) as writer:
        for cols in (columns(plain), columns(with_none), arrow_cols, columns(plain)):
            writer.add_rows(cols)
    assert pq.ParquetFile(path).num_row_groups == 1
    assert rows_of(path) == plain + with_none + arrow + plain


def test_add_rows_rejects_a_call_whole(tmp_path: Path) -> None:
    """Unequal lengths are a CollabError naming them; a value that can not convert raises;
    either way the call leaves nothing behind, not even codes, and the writer goes on."""
    good = some_rows(3000, "a")
    path = tmp_path / "m.parquet"
    with MetricsWriter(path) as writer:
        uneven = columns(good)
        uneven["unit"] = uneven["unit"][:-1]
        with pytest.raises(CollabError, match="lengths differ"):
            writer.add_rows(uneven)
        bad = columns(some_rows(3000, "new-test"))
        bad["value"][-1] = {"not": "a number"}
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
            writer.add_rows(bad)
        writer.add_rows(columns(good))
    assert rows_of(path) == good
    dictionary = pq.read_table(path).column("test").chunk(0).dictionary.to_pylist()
    assert dictionary == ["a"]


def test_add_samples_packed_and_loose_values_keep_row_order(tmp_path: Path) -> None:
    """Batches alternate between packed numbers, numeric text (loose values) and a batch
    whose dicts name the same metrics in another order: rows stay in call order."""
    def batch(t0: float, value: object, swap: bool = False) -> list[dict]:
        out = []
        for i in range(40):
            v = {"a": value, "b": 2.0}
            out.append({"t": t0 + i, "v": {"b": 2.0, "a": value} if swap and i % 2 else v})
        return out

    calls = [batch(0, 1.0), batch(100, "3.5"), batch(200, 4.0), batch(300, 5.0, swap=True), batch(400, 6.0)]
    path = tmp_path / "m.parquet"
    with MetricsWriter(path) as writer:
        for samples in calls:
            writer.add_samples(run="r", test="t", device="d", program="p", pid=1, samples=samples,
                               units={"a": "s", "b": "s"})
    want = [(o["t"] * 1_000_000, name, float(value))
            for samples in calls for o in samples for name, value in o["v"].items()]
    assert [(r[5], r[6], r[7]) for r in rows_of(path)] == want


@pytest.mark.parametrize("run", [2, 12, 64, 65])
def test_timestamps_repeated_per_row_convert_like_any_list(run: int) -> None:
    """A sample's timestamp repeated once per metric row is converted once per run; a run
    broken anywhere, a None, a NaN or a last short run must not change a single row."""
    from pytest_collab.results.metrics_columns import to_timestamps

    heads = [1_700_000_000 + i / 7 for i in range(200)]
    regular = [h for h in heads for _ in range(run)][:-1]
    broken = list(regular)
    broken[len(broken) // 2] = 1.0
    holes = [None if i % 50 == 3 else (float("nan") if i % 50 == 4 else h) for i, h in enumerate(heads)]
    gappy = [h for h in holes for _ in range(run)]
    for seconds in (regular, broken, gappy):
        want = [None if s is None or s != s else round(s * 1e6) for s in seconds]
        assert to_timestamps(seconds).cast(pa.int64()).to_pylist() == want


def test_sample_times_of_every_kind_read_alike_on_every_path(tmp_path: Path) -> None:
    """Integers, numeric text and unreadable ``t`` (null timestamp) give the same rows whether
    a batch takes the uniform path, the checking loop or the per-line call."""
    times = [1_700_000_000, "1700000001.5", None, 1_700_000_002.25, "soon"]
    want = [1_700_000_000_000_000, 1_700_000_001_500_000, None, 1_700_000_002_250_000, None]
    uniform = [{"t": t, "v": {"a": 1.0}} for t in times]
    checked = [*uniform, {"v": {"a": 1.0}}]  # a torn object sends the batch to the loop
    src = dict(run="r", test="t", device="d", program="p", pid=1, units={"a": "s"})
    for name, feed in (("uniform", lambda w: w.add_samples(**src, samples=uniform)),
                       ("checked", lambda w: w.add_samples(**src, samples=checked)),
                       ("per line", lambda w: [w.add_sample(**src, t=o["t"], values=o["v"]) for o in uniform])):
        path = tmp_path / f"{name}.parquet"
        with MetricsWriter(path) as writer:
            feed(writer)
        assert [r[5] for r in rows_of(path)] == want, name
