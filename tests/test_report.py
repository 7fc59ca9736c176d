"""The HTML report, its extension point, the exports and the CLI on a synthetic run.

The run is made with the real writers from real measurements: CPU time and memory of
worker threads sampled while they work, and latencies of localhost socket round trips.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import threading
import time
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

from pytest_collab.cli import report as cli_report  # noqa: E402
from pytest_collab.errors import CollabError, CollabWarning, RunDataError  # noqa: E402
from pytest_collab.results.metrics import MetricsWriter  # noqa: E402
from pytest_collab.results.records import ResultsJournal, write_results_parquet  # noqa: E402
from pytest_collab.report import export_run, render_report  # noqa: E402
from pytest_collab.report.sections import register_section, unregister_section  # noqa: E402
from pytest_collab.report.tables import summarise  # noqa: E402
from pytest_collab.results.rundir import RunDir, git_info, versions  # noqa: E402

RUN_ID = "20260102-030405-abc123"
TESTS = ["testcases/echo/test_echo.py::test_echo[64]", "testcases/echo/test_echo.py::test_echo[4096]"]
PROGRAMS = [("rpi-1", "client"), ("jetson-1", "server")]


def echo_rtts(size: int, n: int = 40) -> list[float]:
    """Real round-trip times (ms) of ``size``-byte messages over a localhost socket pair."""
    a, b = socket.socketpair()
    rtts = []
    with a, b:
        for _ in range(n):
            start = time.perf_counter()
            a.sendall(b"x" * size)
            got = 0
            while got < size:
                got += len(b.recv(65536))
            b.sendall(b"k")
            a.recv(1)
            rtts.append((time.perf_counter() - start) * 1000)
    return rtts


def sample_work(writer: MetricsWriter, test: str, seconds: float = 0.3) -> None:
    """Sample this process's real CPU and memory while a thread burns CPU."""
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [sum(range(5000)) for _ in iter(stop.is_set, True)])
    worker.start()
    units = {"cpu_percent": "%", "rss_bytes": "B", "net_rx_bytes": "B", "net_tx_bytes": "B"}
    last_cpu, last_t, rx = time.process_time(), time.time(), 0
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.02)
        cpu, now = time.process_time(), time.time()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        rx += len(echo_rtts(512, 1)) * 512
        for device, role in PROGRAMS:
            writer.add_sample(run=RUN_ID, test=test, device=device, role=role, pid=os.getpid(),
                              t=now, units=units,
                              values={"cpu_percent": 100 * (cpu - last_cpu) / (now - last_t),
                                      "rss_bytes": rss, "net_rx_bytes": rx, "net_tx_bytes": rx})
        last_cpu, last_t = cpu, now
    stop.set()
    worker.join()


def make_run(root: Path, *, metrics: bool = True, results: bool = True) -> RunDir:
    run = RunDir.create(root, RUN_ID)
    writer = MetricsWriter(run.metrics, row_group_rows=64)
    journal = ResultsJournal(run.parts / "results-gw0.jsonl")
    for test in TESTS:
        size = int(test.split("[")[1].rstrip("]"))
        if metrics:
            sample_work(writer, test)
        if results:
            for record in range(2):
                journal.append({"run": RUN_ID, "test": test, "testcase": "echo", "record": record,
                                "size": size, "mode": ["warm", "cold"][record],
                                "rtt_ms": echo_rtts(size),
                                "setup_ms": echo_rtts(size, 5), "ok": True})
    writer.close()
    journal.close()
    write_results_parquet([journal.path], run.results)
    run.write_run_json({
        "run_id": RUN_ID, "started": "2026-01-02T03:04:05+00:00",
        "finished": "2026-01-02T03:04:09+00:00", "argv": ["pytest", "testcases/echo", "--lan=local"],
        "rootdir": str(root), "workers": 1, "versions": versions(), "git": git_info(root),
        "profile": {"name": "local", "path": "network_profiles/local.yaml",
                    "devices": [{"name": d, "kind": d.split("-")[0], "address": "127.0.0.1",
                                 "transport": "local", "runtime": "process", "tags": ["lab"]}
                                for d, _ in PROGRAMS]},
        "tests": {t: {"devices": {"rpi": ["rpi-1"], "jetson": ["jetson-1"]}, "outcome": "passed",
                      "duration_s": 0.5, "params": {"size": int(t.split("[")[1][:-1])}}
                  for t in TESTS},
    })
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return make_run(tmp_path_factory.mktemp("reports"))


def images(html: str) -> list[str]:
    return re.findall(r'<img src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', html)


def test_report_has_overview_tables_and_inline_figures(run: RunDir) -> None:
    out = render_report(run.root)
    assert out == run.report_html
    html = out.read_text()
    for text in ("Overview", "local", "network_profiles/local.yaml", "pytest testcases/echo --lan=local",
                 "rpi-1", "jetson-1", "pyarrow", "passed", *TESTS,
                 "Latency distributions", "CPU and memory per device and program", "Network bytes",
                 "CPU % peak", "RSS MB peak"):
        assert text in html, text
    # one table row per record, lists summarised with n/median/p90/p99
    assert len(re.findall(r"<td>n=40 median=[\d.e+-]+ p90=[\d.e+-]+ p99=[\d.e+-]+</td>", html)) == 4
    # ECDF for rtt_ms and setup_ms, cpu + rss timelines, net rx + tx
    assert len(images(html)) == 6
    assert "src=" not in re.sub(r'<img src="data:image/png;base64,[^"]+"', "", html)
    assert not re.search(r"https?://|<link|<script", html)


def test_figures_plot_the_recorded_numbers(run: RunDir) -> None:
    from pytest_collab.results.metrics import read_metrics
    from pytest_collab.results.records import read_results
    from pytest_collab.report.figures import ecdf_figure, timeline_figure

    results, metrics = read_results(run.root), read_metrics(run.root)
    lines = ecdf_figure(results, "rtt_ms").axes[0].lines  # one per test and mode
    assert len(lines) == 2 * len(TESTS)
    for line, (_, row) in zip(lines, results.iterrows()):
        assert line.get_label().startswith(f"{row['test'].split('::')[1]} mode={row['mode']} ")
        assert list(line.get_xdata()) == sorted(row["rtt_ms"])
        assert line.get_ydata()[-1] == 1.0
    fig = timeline_figure(metrics, "rss_bytes", scale=1e-6)
    assert [ax.get_title(loc="left") for ax in fig.axes] == sorted(d for d, _ in PROGRAMS)
    plotted = sorted(y for ax in fig.axes for line in ax.lines for y in line.get_ydata())
    rss = metrics.loc[metrics["metric"] == "rss_bytes", "value"] * 1e-6
    assert plotted == pytest.approx(sorted(rss))
    assert timeline_figure(metrics, "power_w") is None


def test_list_summary_matches_numpy_percentiles() -> None:
    import numpy as np

    values = echo_rtts(64, 25) + [float("nan")]
    finite = np.array(values[:-1])
    assert summarise(values) == (f"n=25 median={np.median(finite):.4g} "
                                 f"p90={np.percentile(finite, 90):.4g} p99={np.percentile(finite, 99):.4g}")
    assert summarise([]) == "n=0"


def test_report_of_empty_run_says_so(tmp_path: Path) -> None:
    run = make_run(tmp_path, metrics=False, results=False)
    html = render_report(run.root, tmp_path / "out" / "r.html").read_text()
    assert "no metrics recorded" in html and "no results recorded" in html
    assert not images(html)


def test_report_without_parquet_files_still_renders(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, RUN_ID)
    html = render_report(run.root).read_text()
    assert "metrics.parquet missing" in html and "run.json missing" in html


def test_registered_section_appears_and_a_failing_one_is_contained(run: RunDir) -> None:
    from pytest_collab.report.figures import new_figure

    def sizes(results: pd.DataFrame, metrics: pd.DataFrame, info: dict) -> list:
        fig, (ax,) = new_figure()
        per = results.groupby("size")["rtt_ms"].apply(lambda s: sum(map(len, s)))
        ax.bar(per.index.astype(str), per.values)
        return [fig, "<p id='custom'>samples per size</p>", per.reset_index()]

    register_section("Echo sizes", lambda r, i: "size" in r.columns, sizes)
    register_section("Never", lambda r, i: False, sizes)
    register_section("Broken", lambda r, i: True, lambda r, m, i: [1 / 0])
    try:
        with pytest.warns(CollabWarning, match="Broken"):
            html = render_report(run.root, run.root / "custom.html").read_text()
    finally:
        for name in ("Echo sizes", "Never", "Broken"):
            unregister_section(name)
    assert "<h2" in html and "Echo sizes" in html and "<p id='custom'>" in html
    assert "Never" not in html
    assert "this section failed: ZeroDivisionError" in html
    assert len(images(html)) == 7


def test_testcase_report_sections_are_loaded_from_the_rootdir(tmp_path: Path) -> None:
    run = make_run(tmp_path / "reports", metrics=False)
    info = run.read_run_json()
    info["rootdir"] = str(tmp_path)
    run.write_run_json(info)
    folder = tmp_path / "testcases" / "echo"
    folder.mkdir(parents=True)
    (folder / "echo_helpers.py").write_text("TITLE = 'Echo by mode'\n")
    (folder / "report_sections.py").write_text(
        "from echo_helpers import TITLE\n"
        "from pytest_collab.report.sections import register_section\n"
        "register_section(TITLE, lambda r, i: True,\n"
        "                 lambda r, m, i: [r.groupby('mode').size().reset_index()])\n")
    try:
        html = render_report(run.root).read_text()
        assert "Echo by mode" in html and "<td>warm</td>" in html
        (folder / "report_sections.py").write_text("raise RuntimeError('half-edited')\n")
        unregister_section("Echo by mode")
        with pytest.warns(CollabWarning, match="report_sections.py.*half-edited"):
            html = render_report(run.root).read_text()
        assert "Echo by mode" not in html and "Results" in html
    finally:
        unregister_section("Echo by mode")


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "pickle", "parquet"])
def test_export_reads_back(run: RunDir, fmt: str, tmp_path: Path) -> None:
    from pytest_collab.results.metrics import read_metrics
    from pytest_collab.results.records import read_results

    metrics, results = read_metrics(run.root), read_results(run.root)
    paths = export_run(run.root, fmt, tmp_path)
    assert all(p.parent == tmp_path and p.is_file() for p in paths)
    by_name = {p.name: p for p in paths}
    if fmt == "csv":
        back_m, back_r = pd.read_csv(by_name["metrics.csv"]), pd.read_csv(by_name["results.csv"])
        assert [json.loads(v) for v in back_r["rtt_ms"]] == [list(v) for v in results["rtt_ms"]]
        assert back_m["timestamp"].iloc[0].endswith("Z")
    elif fmt == "xlsx":
        sheets = pd.read_excel(by_name[f"{RUN_ID}.xlsx"], sheet_name=None)
        assert set(sheets) == {"metrics", "results", "run"}
        back_m, back_r = sheets["metrics"], sheets["results"]
        assert "profile" in set(sheets["run"]["key"])
    elif fmt == "json":
        back_m = pd.DataFrame(json.loads(by_name["metrics.json"].read_text()))
        back_r = pd.DataFrame(json.loads(by_name["results.json"].read_text()))
        for got, want in zip(back_r["rtt_ms"], results["rtt_ms"]):
            assert got == pytest.approx(list(want), rel=1e-12)
        assert json.loads(by_name["run.json"].read_text())["run_id"] == RUN_ID
    elif fmt == "pickle":
        back_m, back_r = pd.read_pickle(by_name["metrics.pkl"]), pd.read_pickle(by_name["results.pkl"])
        pd.testing.assert_frame_equal(back_m, metrics)
    else:
        back_m, back_r = read_metrics(tmp_path), read_results(tmp_path)
        pd.testing.assert_frame_equal(back_m, metrics)
    assert len(back_m) == len(metrics) and len(back_r) == len(results)
    assert sorted(back_m["value"].round(6)) == sorted(metrics["value"].round(6))


def test_export_default_folder_and_unknown_format(run: RunDir) -> None:
    assert {p.parent for p in export_run(run.root, "parquet")} == {run.root / "export"}
    with pytest.raises(CollabError, match="valid formats: csv, xlsx, json, pickle, parquet"):
        export_run(run.root, "docx")


def test_missing_run_raises_run_data_error(tmp_path: Path) -> None:
    with pytest.raises(RunDataError, match="run folder not found"):
        render_report(tmp_path / "nope")
    with pytest.raises(RunDataError, match="run folder not found"):
        export_run(tmp_path / "nope", "csv")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="collab")
    cli_report.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_report_and_export_by_latest_and_id(run: RunDir, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    reports = run.root.parent
    args = parse(["report", "latest", "--reports-dir", str(reports), "-o", str(tmp_path / "r.html")])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    assert images((tmp_path / "r.html").read_text())
    args = parse(["export", RUN_ID, "--reports-dir", str(reports), "--format", "csv",
                  "-o", str(tmp_path / "x")])
    assert args.func(args) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["metrics.csv", "results.csv"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["report", "latest", "--reports-dir", str(tmp_path)])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("collab report: error:") and "latest" in err
    with pytest.raises(SystemExit):
        parse(["export", "latest", "--format", "docx"])
