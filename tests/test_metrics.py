"""Storage of a run: streaming metrics writer, results journal, merge, run folder."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
np = pytest.importorskip("numpy")

from pytest_collab.errors import CollabError, CollabWarning, RunDataError  # noqa: E402
from pytest_collab.results.metrics import MetricsWriter, merge_parquet, metrics_schema, read_metrics  # noqa: E402
from pytest_collab.results.records import ResultsJournal, read_results, write_results_parquet  # noqa: E402
from pytest_collab.results.rundir import (  # noqa: E402
    RunDir,
    git_info,
    new_run_id,
    resolve_run_dir,
    slug,
    versions,
)

UNITS = {"cpu_percent": "%", "rss_bytes": "B", "threads": ""}


def random_samples(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        names = rng.sample(sorted(UNITS), rng.randint(1, 3))
        out.append(dict(run="r1", test=f"t.py::test_{i % 3}", device=f"dev{i % 2}",
                        program=rng.choice(["server", "client"]), pid=1000 + i % 5,
                        t=1_700_000_000 + i * 0.1 + rng.random() / 100,
                        values={k: rng.random() * 100 for k in names}, units=UNITS))
    return out


def expected_rows(samples: list[dict]) -> list[tuple]:
    return [(s["run"], s["test"], s["device"], s["program"], s["pid"], round(s["t"] * 1e6),
             k, v, s["units"][k]) for s in samples for k, v in s["values"].items()]


def actual_rows(path: Path) -> list[tuple]:
    t = pq.read_table(path)
    cols = {n: t.column(n).to_pylist() for n in t.column_names}
    cols["timestamp"] = t.column("timestamp").cast(pa.int64()).to_pylist()
    return list(zip(*(cols[n] for n in metrics_schema().names)))


def test_streaming_writer_several_row_groups_reads_back_equal(tmp_path: Path) -> None:
    samples = random_samples(3000)
    path = tmp_path / "metrics.parquet"
    with MetricsWriter(path, row_group_rows=500) as writer:
        for s in samples:
            writer.add_sample(**s)
    assert pq.ParquetFile(path).num_row_groups >= len(expected_rows(samples)) // 600
    assert sorted(actual_rows(path)) == sorted(expected_rows(samples))
    assert pq.read_schema(path).equals(metrics_schema())
    assert not (tmp_path / "metrics.parquet.tmp").exists()


def test_add_rows_and_samples_from_threads(tmp_path: Path) -> None:
    samples = random_samples(2000, seed=2)
    bulk = expected_rows(random_samples(700, seed=3))
    path = tmp_path / "m.parquet"
    writer = MetricsWriter(path, row_group_rows=256)

    def feed(part: list[dict]) -> None:
        for s in part:
            writer.add_sample(**s)

    threads = [threading.Thread(target=feed, args=(samples[i::4],)) for i in range(4)]
    for th in threads:
        th.start()
    columns = dict(zip(metrics_schema().names, map(list, zip(*bulk))))
    columns["timestamp"] = [us / 1e6 for us in columns["timestamp"]]
    writer.add_rows(columns)
    for th in threads:
        th.join()
    writer.close()
    assert sorted(actual_rows(path)) == sorted(expected_rows(samples) + bulk)


def test_each_flush_is_one_row_group(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    samples = random_samples(30, seed=6)
    with MetricsWriter(path) as writer:
        for chunk in (samples[:10], samples[10:25], samples[25:]):
            for s in chunk:
                writer.add_sample(**s)
            writer.flush()
        writer.flush()  # nothing buffered: no empty row group
    sizes = [pq.ParquetFile(path).metadata.row_group(i).num_rows for i in range(3)]
    assert pq.ParquetFile(path).num_row_groups == 3
    assert sizes == [len(expected_rows(c)) for c in (samples[:10], samples[10:25], samples[25:])]


def as_batches(samples: list[dict], size: int) -> list[dict]:
    """add_samples calls: consecutive samples of one source, ``size`` wrapper objects each."""
    calls: list[dict] = []
    for s in samples:
        head = {k: s[k] for k in ("run", "test", "device", "program", "units")}
        if not calls or len(calls[-1]["samples"]) == size or \
                {k: calls[-1][k] for k in head} != head:
            calls.append(dict(head, pid=None, samples=[]))
        calls[-1]["samples"].append({"k": "m", "t": s["t"], "pid": s["pid"], "v": s["values"]})
    return calls


def test_add_samples_batches_equal_per_line_rows_across_threads(tmp_path: Path) -> None:
    samples = random_samples(3000, seed=8)  # ragged metric sets, pids from the objects
    path = tmp_path / "m.parquet"
    writer = MetricsWriter(path, row_group_rows=300)
    calls = as_batches(samples, 7)

    def feed(part: list[dict]) -> None:
        for call in part:
            writer.add_samples(**call)

    threads = [threading.Thread(target=feed, args=(calls[i::3],)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    writer.close()
    assert sorted(actual_rows(path)) == sorted(expected_rows(samples))
    assert pq.ParquetFile(path).num_row_groups > 3


def test_add_samples_default_pid_unit_change_and_bad_objects(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    src = dict(run="r", test="t", device="d", program="p", pid=7)
    with MetricsWriter(path) as writer:
        writer.add_samples(**src, units={"power": "W"}, samples=[
            {"t": 1.0, "v": {"power": 5.0}}, {"t": 2.0, "pid": 0, "v": {"power": "n/a"}}])
        writer.add_samples(**src, units={"power": "mW"}, samples=[{"t": 3.0, "v": {"power": 1.0}}])
        writer.add_samples(**src, units={"power": "mW"}, samples=[  # torn objects: skipped
            {"v": {"power": 3.0}}, {"t": 4.0, "v": {"power": 2.0}}, {"t": 4.5, "v": [1.0]}, 7])
        assert writer.skipped_samples == 3
        with pytest.raises(AttributeError):
            writer.add_sample(**src, t=5.0, values=[1.0], units={"power": "mW"})
    table = pq.read_table(path).sort_by("timestamp")
    assert list(zip(*(table.column(c).to_pylist() for c in ("pid", "value", "unit")))) == \
        [(7, 5.0, "W"), (7, None, "W"), (7, 1.0, "mW"), (7, 2.0, "mW")]
    with pytest.raises(CollabError, match="closed"):
        writer.add_samples(**src, units={}, samples=[{"t": 6.0, "v": {"x": 1.0}}])


def test_journal_lines_are_on_disk_before_close(tmp_path: Path) -> None:
    journal = ResultsJournal(tmp_path / "j.jsonl")
    journal.append({"test": "t", "rtt_ms": np.arange(3.0), "n": np.int64(4), "when": None})
    row = json.loads((tmp_path / "j.jsonl").read_text())  # read while still open
    assert row["rtt_ms"] == [0.0, 1.0, 2.0] and row["n"] == 4 and "timestamp" in row
    journal.close()


def test_add_rows_rejects_wrong_columns(tmp_path: Path) -> None:
    with MetricsWriter(tmp_path / "m.parquet") as writer, pytest.raises(CollabError, match="missing"):
        writer.add_rows({"run": ["x"]})


def test_unit_change_keeps_each_rows_unit(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    with MetricsWriter(path) as writer:
        writer.add_sample(run="r", test="t", device="d", program="p", pid=1, t=1.0,
                          values={"power": 5.0}, units={"power": "W"})
        writer.add_sample(run="r", test="t", device="d", program="p", pid=1, t=2.0,
                          values={"power": 5000.0}, units={"power": "mW"})
    assert sorted(zip(*(pq.read_table(path).column(c).to_pylist() for c in ("value", "unit")))) \
        == [(5.0, "W"), (5000.0, "mW")]


def test_empty_writer_is_a_valid_file_with_schema(tmp_path: Path) -> None:
    path = MetricsWriter(tmp_path / "m.parquet").close()
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.schema.equals(metrics_schema())


CRASH = """
import os, sys
from pathlib import Path
from pytest_collab.results.metrics import MetricsWriter
w = MetricsWriter(Path(sys.argv[1]), row_group_rows=10)
for i in range(100):
    w.add_sample(run="r", test="t", device="d", program="p", pid=1, t=float(i),
                 values={"cpu_percent": 1.0}, units={"cpu_percent": "%"})
os._exit(3)  # killed mid-run: no close()
"""


def test_crash_never_leaves_a_half_written_final_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.parquet"
    done = subprocess.run([sys.executable, "-c", CRASH, str(path)], timeout=60, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 3
    assert not path.exists()
    assert (tmp_path / "metrics.parquet.tmp").stat().st_size > 0  # row groups were streamed
    with pytest.raises(RunDataError, match=r"metrics\.parquet.*did not finish"):
        read_metrics(tmp_path)


def _part(path: Path, samples: list[dict]) -> Path:
    with MetricsWriter(path, row_group_rows=100) as writer:
        for s in samples:
            writer.add_sample(**s)
    return path


def test_merge_two_parts_plus_missing_empty_and_corrupt(tmp_path: Path) -> None:
    a, b = random_samples(300, seed=4), random_samples(200, seed=5)
    parts = [_part(tmp_path / "a.parquet", a), _part(tmp_path / "b.parquet", b),
             tmp_path / "missing.parquet", MetricsWriter(tmp_path / "empty.parquet").close()]
    (tmp_path / "zero.parquet").write_bytes(b"")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    parts += [tmp_path / "zero.parquet", tmp_path / "bad.parquet"]
    with pytest.warns(CollabWarning, match="bad.parquet"):
        out = merge_parquet(parts, tmp_path / "metrics.parquet", metrics_schema())
    assert sorted(actual_rows(out)) == sorted(expected_rows(a) + expected_rows(b))
    assert pq.ParquetFile(out).num_row_groups == (pq.ParquetFile(parts[0]).num_row_groups
                                                  + pq.ParquetFile(parts[1]).num_row_groups)


def test_merge_of_nothing_is_an_empty_metrics_file(tmp_path: Path) -> None:
    out = merge_parquet([tmp_path / "none.parquet"], tmp_path / "m.parquet")
    assert pq.read_table(out).schema.equals(metrics_schema())


def test_results_union_with_list_columns(tmp_path: Path) -> None:
    lead = {"run": "r", "testcase": "split"}
    with ResultsJournal(tmp_path / "w0.jsonl") as j0:
        j0.append({**lead, "test": "t::a[l1]", "record": 0, "split": "l1",
                   "rtt_ms": np.array([1.5, 2.5, 3.5]), "ok": True})
        j0.append({**lead, "test": "t::a[l1]", "record": 1, "split": "l1", "rtt_ms": [4, 5]})
    with ResultsJournal(tmp_path / "w1.jsonl") as j1:
        j1.append({**lead, "test": "t::b", "record": 0, "bytes": 1024, "acc": 0.91,
                   "rtt_ms": (7.0,), "note": None})
    with open(tmp_path / "w1.jsonl", "a") as fh:
        fh.write('{"run": "r", "torn')  # crash mid-line: dropped
    out = write_results_parquet([tmp_path / "w0.jsonl", tmp_path / "w1.jsonl",
                                 tmp_path / "gone.jsonl"], tmp_path / "results.parquet")
    table = pq.read_table(out)
    assert table.column_names == ["run", "test", "testcase", "record", "timestamp",
                                  "split", "rtt_ms", "ok", "bytes", "acc", "note"]
    assert table.schema.field("rtt_ms").type == pa.list_(pa.float64())
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("rtt_ms").to_pylist() == [[1.5, 2.5, 3.5], [4.0, 5.0], [7.0]]
    assert table.column("bytes").to_pylist() == [None, None, 1024]
    frame = read_results(tmp_path)
    assert list(frame["record"]) == [0, 1, 0] and frame["timestamp"].notna().all()


def test_results_timestamps_from_seconds_iso_and_datetimes(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    import pandas as pd

    when = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    with ResultsJournal(tmp_path / "j.jsonl") as journal:
        for stamp in (when.timestamp(), when.isoformat(), when, "2026-01-02T03:04:05.123456Z"):
            journal.append({"test": "t", "timestamp": stamp})
    frame = read_results(write_results_parquet([journal.path], tmp_path / "results.parquet").parent)
    assert set(frame["timestamp"]) == {pd.Timestamp(when)}


def test_results_without_rows_still_have_lead_columns(tmp_path: Path) -> None:
    out = write_results_parquet([], tmp_path / "results.parquet")
    assert pq.read_table(out).column_names == ["run", "test", "testcase", "record", "timestamp"]


def test_corrupt_journal_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(RunDataError, match=r"w\.jsonl:2"):
        write_results_parquet([path], tmp_path / "results.parquet")


def test_read_missing_or_corrupt_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RunDataError, match="run folder not found"):
        read_metrics(tmp_path / "nope")
    with pytest.raises(RunDataError, match=r"results\.parquet: results file missing"):
        read_results(tmp_path)
    (tmp_path / "metrics.parquet").write_text("garbage")
    with pytest.raises(RunDataError, match=r"metrics\.parquet: unreadable"):
        read_metrics(tmp_path)


# -- run folder --------------------------------------------------------------------------
def test_run_id_format_and_uniqueness() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)


def test_create_points_latest_and_resolves(tmp_path: Path) -> None:
    first = RunDir.create(tmp_path, "20260101-000000-aaaaaa")
    second = RunDir.create(tmp_path, "20260101-000001-bbbbbb")
    assert first.root.is_dir() and second.root.is_dir()
    assert (tmp_path / "latest").resolve() == second.root.resolve()
    assert resolve_run_dir("latest", tmp_path).root == second.root.resolve()
    assert resolve_run_dir(first.run_id, tmp_path).root == first.root.resolve()
    assert resolve_run_dir(str(first.root)).root == first.root.resolve()
    with pytest.raises(RunDataError, match="no such run folder"):
        resolve_run_dir("20990101-000000-cccccc", tmp_path)


def test_latest_that_is_a_real_folder_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    RunDir.create(tmp_path, "20260101-000000-aaaaaa")
    assert (tmp_path / "latest").is_dir() and not (tmp_path / "latest").is_symlink()


def test_paths_and_log_slugs(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.metrics.name == "metrics.parquet" and run.parts.name == ".parts"
    logs = run.logs_for("testcases/split/test_s.py::test_s[layer1-0.5/x]")
    assert logs.is_dir() and logs.parent == run.logs
    assert re.fullmatch(r"[A-Za-z0-9._=-]+", logs.name)
    long_a, long_b = "t.py::" + "a" * 300 + "1", "t.py::" + "a" * 300 + "2"
    assert slug(long_a) != slug(long_b) and len(slug(long_a)) <= 120


def test_run_json_roundtrip_and_errors(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, new_run_id())
    with pytest.raises(RunDataError, match="run.json: missing"):
        run.read_run_json()
    info = {"run_id": run.run_id, "tests": {"t::a": {"outcome": "passed"}}, "workers": 2}
    run.write_run_json(info)
    assert run.read_run_json() == info
    assert not list(run.root.glob("*.tmp"))
    run.run_json.write_text("{broken")
    with pytest.raises(RunDataError, match="unreadable"):
        run.read_run_json()


def test_git_info_inside_and_outside_git(tmp_path: Path) -> None:
    assert git_info(tmp_path) == {}
    here = git_info(Path(__file__).parent)
    if here:  # the project tree is a git checkout
        assert re.fullmatch(r"[0-9a-f]{40}", here["commit"]) and isinstance(here["dirty"], bool)


def test_versions_without_importing_torch() -> None:
    had_torch = "torch" in sys.modules
    found = versions()
    assert {"python", "platform", "pytest", "pytest_collab", "pyarrow", "numpy"} <= set(found)
    assert ("torch" in sys.modules) == had_torch
    json.dumps(found)


def _column_cases(rng: random.Random) -> dict[str, list]:
    """Long lists shaped like long-format columns, plus the irregular ones the fast path must not break."""
    names = [f"m{i}" for i in range(12)]
    n = 10_000
    return {
        "cycle": [names[i % 12] for i in range(n)],
        "per-sample": [f"dev{(i // 12) % 3}" for i in range(n)],
        "two runs": ["a"] * 7001 + ["b"] * (n - 7001),
        "period breaks late": [names[i % 12] for i in range(n - 1)] + ["late"],
        "random": [rng.choice(names) for _ in range(n)],
        "equal, not identical": [str(i % 5).zfill(3) for i in range(n)],
        "short": ["x", "y", "x"],
        "empty": [],
    }


def test_text_and_ints_encoders_round_trip_any_list() -> None:
    from pytest_collab.results.metrics_columns import _text, ints

    rng = random.Random(3)
    for name, values in _column_cases(rng).items():
        encoded = _text(values)
        assert pa.types.is_dictionary(encoded.type), name
        assert encoded.to_pylist() == values, name
        numbers = [hash(v) % 7 for v in values]
        assert ints(numbers).to_pylist() == numbers, name
    assert _text(["a", None, "a"] * 1000).to_pylist() == ["a", None, "a"] * 1000
    assert ints([1, None] * 2000).to_pylist() == [1, None] * 2000


def test_add_rows_irregular_and_periodic_chunks_read_back_exactly(tmp_path: Path) -> None:
    samples = random_samples(3000, seed=4)  # 1 to 3 metrics per sample: no single period
    regular = [dict(s, values={k: float(i) for i, k in enumerate(sorted(UNITS))}) for s in random_samples(3000, 5)]
    path = tmp_path / "m.parquet"
    with MetricsWriter(path, row_group_rows=4096) as writer:
        for batch in (samples, regular):
            rows = expected_rows(batch)
            cols = dict(zip(metrics_schema().names, map(list, zip(*rows))))
            cols["timestamp"] = [s["t"] for s in batch for _ in s["values"]]
            writer.add_rows(cols)
    assert actual_rows(path) == expected_rows(samples) + expected_rows(regular)


def test_add_samples_mixed_pids_and_names_in_one_batch(tmp_path: Path) -> None:
    """A batch the uniform path can not take (pids and metric names vary) keeps every row."""
    objs = [{"t": 1_700_000_000 + i, "v": {"threads": i} if i % 3 else {"threads": i, "rss_bytes": 2 * i},
             "pid": 7 if i % 2 else None} for i in range(50)]
    path = tmp_path / "m.parquet"
    with MetricsWriter(path) as writer:
        writer.add_samples(run="r", test="t", device="d", program="x", pid=5, samples=objs, units=UNITS)
        writer.add_samples(run="r", test="t", device="d", program="x", pid=5, samples=objs[1::2], units=UNITS)
    want = [("r", "t", "d", "x", o["pid"] or 5, o["t"] * 1_000_000, k, v, UNITS[k])
            for o in objs + objs[1::2] for k, v in o["v"].items()]
    assert sorted(actual_rows(path)) == sorted(want)


def test_values_of_uniform_and_checked_batches_read_alike(tmp_path: Path) -> None:
    """Numbers and numeric text become floats, anything else null, whichever path a batch takes."""
    odd = [1, True, "2.5", "n/a", None, 3.25]
    uniform = [{"t": 1_700_000_000 + i, "v": {"threads": v}} for i, v in enumerate(odd)]
    checked = [dict(o, t=o["t"] + 100) for o in uniform] + [{"v": {}}]  # a torn object: the checking loop
    path = tmp_path / "m.parquet"
    with MetricsWriter(path) as writer:
        for batch in (uniform, checked):
            writer.add_samples(run="r", test="t", device="d", program="x", pid=1, samples=batch, units=UNITS)
    values = pq.read_table(path).sort_by("timestamp").column("value").to_pylist()
    assert values == [1.0, 1.0, 2.5, None, None, 3.25] * 2


def test_results_columns_past_int64_are_kept(tmp_path) -> None:
    """Flower's node ids are unsigned 64-bit: a results column of them must not fail the run."""
    import json as _json

    journal = tmp_path / "results-x.jsonl"
    big = 2**64 - 5
    journal.write_text("\n".join(_json.dumps({"run": "r", "test": "t", "record": i, "node_id": v,
                                              "mixed": big if i else -1})
                                 for i, v in enumerate([big, 7])) + "\n")
    out = write_results_parquet([journal], tmp_path / "results.parquet")
    table = pq.read_table(out)
    assert table.column("node_id").to_pylist() == [big, 7]
    assert table.column("mixed").to_pylist() == ["-1", str(big)]   # neither int64 nor uint64: text


def test_float_columns_fast_path_and_fallbacks_agree() -> None:
    from pytest_collab.results.metrics_columns import _floats, float64s, to_timestamps

    numbers = [1.5, 2, True, -0.0, 1e300]
    assert float64s(numbers).tolist() == [1.5, 2.0, 1.0, -0.0, 1e300]
    for other in ([1.0, None], [1.0, "2.5"], (1.0, 2.0), [10 ** 400]):
        assert float64s(other) is None  # the slower paths decide what these mean
    assert _floats([1.0, None, "2.5", "x"]).to_pylist() == [1.0, None, 2.5, None]
    stamps = to_timestamps([1_700_000_000.25, None]).to_pylist()
    assert stamps[0].timestamp() == 1_700_000_000.25 and stamps[1] is None
