"""The HTML report, its extension point, the exports and the CLI on a synthetic run.

The run is made with the real writers from real measurements: CPU time and memory of
worker threads sampled while they work, and latencies of localhost socket round trips.
"""
from __future__ import annotations

import json
import os
import re
import resource
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

from pytest_collab.cli import main  # noqa: E402
from pytest_collab.errors import CollabError, CollabWarning, RunDataError  # noqa: E402
from pytest_collab.results.metrics import MetricsWriter  # noqa: E402
from pytest_collab.results.records import ResultsJournal, write_results_parquet  # noqa: E402
from pytest_collab.report import export_run, render_report  # noqa: E402
from pytest_collab.report.sections import register_section, unregister_section  # noqa: E402
from pytest_collab.report.tables import summarise  # noqa: E402
from pytest_collab.results.rundir import RunDir, git_info, slug, versions  # noqa: E402

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
        for device, program in PROGRAMS:
            writer.add_sample(run=RUN_ID, test=test, device=device, program=program, pid=os.getpid(),
                              t=now, units=units,
                              values={"cpu_percent": 100 * (cpu - last_cpu) / (now - last_t),
                                      "rss_bytes": rss, "net_rx_bytes": rx, "net_tx_bytes": rx})
        last_cpu, last_t = cpu, now
    stop.set()
    worker.join()


FAILED_TEST = "testcases/echo/test_echo.py::test_echo[1048576]"
INTERRUPTED_TEST = "testcases/echo/test_echo.py::test_echo[8388608]"
REASON = ("ProgramFailed: tail_server.py on jetson-1 exited with signal 9\n"
          "last output:\n  Killed: out of memory while loading layer4")


def make_run(root: Path, *, metrics: bool = True, results: bool = True, problems: bool = False) -> RunDir:
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
        "tests": {**{t: {"devices": {"rpi": ["rpi-1"], "jetson": ["jetson-1"]}, "outcome": "passed",
                         "testcase": "echo", "duration_s": 0.5, "lease_wait_s": 0.0,
                         "params": {"size": int(t.split("[")[1][:-1])}} for t in TESTS},
                  **(problem_tests(run) if problems else {})},
    })
    return run


def problem_tests(run: RunDir) -> dict:
    """run.json entries of a failed and an interrupted test, as the plugin writes them."""
    logs = run.logs_for(FAILED_TEST)
    (logs / "jetson-1.tail_server.log").write_text("loading layer4\nKilled\n")
    return {
        FAILED_TEST: {"testcase": "echo", "outcome": "failed", "reason": REASON, "duration_s": 31.0,
                      "lease_wait_s": 20.0, "params": {"size": 1048576},
                      "program": {"name": "tail_server.py", "device": "jetson-1", "signal": 9},
                      "logs": str(logs.relative_to(run.root))},
        INTERRUPTED_TEST: {"testcase": "echo", "outcome": "interrupted", "duration_s": 2.0,
                           "reason": "KeyboardInterrupt: signal 15", "params": {"size": 8388608}},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return make_run(tmp_path_factory.mktemp("reports"))


def images(html: str) -> list[str]:
    return re.findall(r'<img src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', html)


def chart_specs(html: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(
        r'<script type="application/json" class="chart-spec">(.*?)</script>', html, re.S)]


def test_report_leads_with_the_summary_and_is_self_contained(run: RunDir) -> None:
    out = render_report(run.root)
    assert out == run.report_html
    html = out.read_text()
    for text in ("Run details", "local", "network_profiles/local.yaml", "pytest testcases/echo --lan=local",
                 "rpi-1", "jetson-1", "pyarrow", "passed", *TESTS,
                 "Latency distributions", "CPU and memory per device and program", "Network traffic",
                 "CPU % peak", "RSS MB peak", "per namespace"):
        assert text in html, text
    # the experiment's summary table comes before every other table
    first = html.index("<table", html.index("<body>"))
    assert html[first:].startswith('<table class="summary sortable" data-testcase="echo">')
    # wide per-test tables are collapsed at the end, lists summarised with n/median/p90/p99
    assert html.index("All results") > html.index("Latency distributions")
    assert len(re.findall(r"<td>n=40 median=[\d.e+-]+ p90=[\d.e+-]+ p99=[\d.e+-]+</td>", html)) == 4
    assert html.count("<details><summary>testcases/echo") == len(TESTS)
    # ECDF for rtt_ms and setup_ms, CPU + RSS per device, net rx + tx per program
    titles = [c["title"] for c in chart_specs(html)]
    assert sum(t.startswith("rtt_ms") for t in titles) == 1 and sum(t.startswith("setup_ms") for t in titles) == 1
    assert sum(t.startswith("CPU %") for t in titles) == len(PROGRAMS)
    assert not re.search(r"https?://|<link|src=\"(?!data:)", html)  # one offline file


def test_charts_plot_the_recorded_numbers(run: RunDir) -> None:
    from pytest_collab.report.builtin import device_charts, ecdf_charts
    from pytest_collab.report.resources import rss_series, test_spans
    from pytest_collab.results.metrics import read_metrics
    from pytest_collab.results.records import read_results

    results, metrics = read_results(run.root), read_metrics(run.root)
    (chart,) = ecdf_charts(results, "rtt_ms")  # one line per test and mode
    assert len(chart.series) == 2 * len(TESTS)
    for line, (_, row) in zip(chart.series, results.iterrows()):
        # one test function: the parameter id names the test
        assert line["label"].startswith(f"{row['test'].split('[')[1].rstrip(']')} mode={row['mode']} ")
        assert line["x"] == pytest.approx(sorted(row["rtt_ms"]), abs=1e-6)
        assert line["y"][-1] == 1.0
    charts = device_charts(rss_series(metrics), test_spans(metrics), "RSS", "MB")
    assert [c.title for c in charts] == [f"RSS: {d}" for d in sorted(d for d, _ in PROGRAMS)]
    assert [b["label"] for b in charts[0].bands] == ["64", "4096"]  # test spans, labelled by parameter id
    plotted = sorted(y for c in charts for s in c.series for y in s["y"] if y is not None)
    rss = metrics.loc[metrics["metric"] == "rss_bytes", "value"] * 1e-6
    assert plotted == pytest.approx(sorted(rss), abs=1e-6)


def test_cpu_percent_ignores_a_sliver_of_an_interval() -> None:
    """A final sample 1.6 ms after the one before must not become a 600 % peak."""
    from pytest_collab.report.rates import sound_rates, sound_samples

    t = [0.1 * i for i in range(11)] + [1.0016]        # 10 Hz, then the exit sample
    cpu = [0.09 * i for i in range(11)] + [0.90 + 0.01]  # 90 % of a core; a 10 ms clock tick at the end
    naive = (cpu[-1] - cpu[-2]) / (t[-1] - t[-2]) * 100
    assert naive > 500
    times, rates = sound_rates(t, cpu)
    assert max(rates) * 100 < 100 and times[-1] == pytest.approx(1.0016)
    assert (cpu[-1] - cpu[0]) == pytest.approx(sum(r * d for r, d in zip(rates, [0.1] * 9 + [0.1016])))
    kept_t, kept = sound_samples(t, [0.0] + [90.0] * 10 + [naive])  # old runs: drop the sliver
    assert list(kept) == [0.0] + [90.0] * 10


def test_network_is_labelled_as_measured(tmp_path: Path) -> None:
    import pandas as pd

    from pytest_collab.report.builtin import _network

    def frame(metric: str) -> pd.DataFrame:
        rows = [{"run": RUN_ID, "test": TESTS[0], "device": d, "program": r, "pid": 1,
                 "timestamp": pd.Timestamp(1.7e9 + i / 10, unit="s", tz="UTC"), "metric": metric,
                 "value": 1e6 * i, "unit": "B"} for d, r in PROGRAMS for i in range(20)]
        return pd.DataFrame(rows)

    local = {"profile": {"devices": [{"name": d, "transport": "local"} for d, _ in PROGRAMS]}}
    host = [i for i in _network(None, frame("host_net_rx_bytes"), local) if not isinstance(i, str)]
    assert [c.title for c in host] == ["MB/s received, host-wide: this machine (jetson-1, rpi-1)"]
    assert host[0].series[0]["y"] == pytest.approx([10.0] * 19, rel=1e-4)  # 1 MB per 0.1 s, counted once
    own = [i for i in _network(None, frame("net_tx_bytes"), local) if not isinstance(i, str)]
    assert sorted(c.title for c in own) == ["MB/s sent, per namespace: jetson-1", "MB/s sent, per namespace: rpi-1"]


def test_failures_and_interruptions_carry_their_reason(tmp_path: Path) -> None:
    run = make_run(tmp_path, metrics=False, problems=True)
    html = render_report(run.root).read_text()
    assert "2 tests did not pass" in html
    assert "failed" in html and "interrupted" in html
    assert "Killed: out of memory while loading layer4" in html  # the reason's lines
    assert "failing program: <b>tail_server.py on jetson-1 (signal 9)</b>" in html
    log = f"logs/{slug(FAILED_TEST)}/jetson-1.tail_server.log"
    assert f'href="{log}"' in html and (run.root / log).is_file()
    assert '<tr class="interrupted">' in html and "KeyboardInterrupt: signal 15" in html
    # the summary shows both configurations even though they recorded nothing
    summary = html[html.index('class="summary sortable"'):html.index("</table>", html.index('class="summary'))]
    assert "1,048,576" in summary and "8,388,608" in summary
    # lease wait apart from the test's own time
    tests = html[html.index('id="tests"'):]
    assert "<td>11.00</td><td>20.0</td>" in tests


def test_outcome_of_an_older_run_without_the_fields(tmp_path: Path) -> None:
    from pytest_collab.report.outcomes import describe_program, test_outcomes

    (o,) = test_outcomes({"tests": {"t.py::test_a": {"duration_s": 1.0}}})
    assert o.outcome == "unknown" and o.reason == "" and o.logs == [] and o.own_duration_s == 1.0
    assert describe_program("prog.py") == "prog.py" and describe_program(None) == ""
    long = "\n".join(f"line {i}" for i in range(40))
    (f,) = test_outcomes({"tests": {"t.py::test_b": {"outcome": "failed", "reason": long}}})
    assert f.reason.splitlines()[-1] == "... (25 more lines in the logs)"


def test_headline_default_and_declared(run: RunDir) -> None:
    from pytest_collab.report.headline import headline_from_mapping, register_headline, unregister_headline
    from pytest_collab.report.outcomes import test_outcomes
    from pytest_collab.report.summary import summaries
    from pytest_collab.results.records import read_results

    results, info = read_results(run.root), run.read_run_json()
    (s,) = summaries(results, info, test_outcomes(info))
    # default: the parameter, then the settings that vary; sample lists as figures
    assert s.header[:4] == ["outcome", "size", "mode", "rtt_ms"] and s.headline.key == "rtt_ms"
    register_headline("echo", key="setup_ms", columns=["mode", "size"], also=["rtt_ms"])
    try:
        (s,) = summaries(results, info, test_outcomes(info))
        assert s.header == ["outcome", "mode", "size", "setup_ms", "rtt_ms"] and s.key_index == 3
        values = [row[3].value for row in s.rows]
        assert values == pytest.approx([float(np.median(v)) for v in results["setup_ms"]])
    finally:
        unregister_headline("echo")
    with pytest.raises(CollabError, match="report_sections.py: HEADLINE must be a dict with 'key'"):
        headline_from_mapping("echo", ["p50_ms"], "testcases/echo/report_sections.py")


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
    run.write_run_json({"run_id": RUN_ID, "tests": {}})  # a run that crashed before measuring
    html = render_report(run.root).read_text()
    assert "metrics.parquet missing" in html and "results.parquet missing" in html


def test_a_folder_that_is_not_a_run_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run\n")
    with pytest.raises(RunDataError, match="not a pytest-collab run folder"):
        render_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


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
    assert len(images(html)) == 1
    # sections of no experiment come after the experiments' summaries, before the built-in ones
    assert html.index('class="summary sortable"') < html.index(">Echo sizes</h2>") < html.index(
        ">Latency distributions</h2>")


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
        # registered while its experiment's file loaded: it follows that experiment's summary
        assert html.index('data-testcase="echo"') < html.index("<h3>Echo by mode</h3>") < html.index(
            ">Latency distributions</h2>")
        (folder / "report_sections.py").write_text("raise RuntimeError('half-edited')\n")
        unregister_section("Echo by mode")
        with pytest.warns(CollabWarning, match="report_sections.py.*half-edited"):
            html = render_report(run.root).read_text()
        assert "Echo by mode" not in html and "All results" in html
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


def test_cli_report_and_export_by_latest_and_id(run: RunDir, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    reports = run.root.parent
    assert main(["report", "latest", "--reports-dir", str(reports), "-o", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    assert chart_specs((tmp_path / "r.html").read_text())
    assert main(["export", RUN_ID, "--reports-dir", str(reports), "--format", "csv", "-o", str(tmp_path / "x")]) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["metrics.csv", "results.csv"]


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "latest", "--reports-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("collab report: error:") and "latest" in err and len(err.splitlines()) == 1
    (tmp_path / "other").mkdir()
    assert main(["report", str(tmp_path / "other")]) == 2
    assert "not a pytest-collab run folder" in capsys.readouterr().err
    assert not (tmp_path / "other" / "report.html").exists()
    with pytest.raises(SystemExit) as usage:
        main(["export", "latest", "--format", "docx"])
    assert usage.value.code == 2


def test_default_headline_leaves_out_points_in_time() -> None:
    """Per-measurement t_start/t_end are floats but no figures (nor in compare: metric_rules)."""
    from pytest_collab.report.headline import default_headline

    rows = pd.DataFrame([{"run": RUN_ID, "test": TESTS[0], "testcase": "echo", "record": i, "timestamp": 1.7e9 + i,
                          "t_start": 1.7e9 + i, "t_end": 1.7e9 + i + 0.2, "tail_t_start": 1.7e9 + i + 0.1,
                          "rtt_p50_ms": 1.0 + i, "goodput": 2.0 * i} for i in range(3)])
    headline = default_headline("echo", rows, {})
    assert headline.figures == ("rtt_p50_ms", "goodput")


def test_points_in_time_are_not_drawn_as_distributions() -> None:
    """Per-query ``t_start``/``t_end`` epochs are list columns too, but an ECDF of them means nothing."""
    pd = pytest.importorskip("pandas")
    from pytest_collab.report.builtin import _distribution_columns

    results = pd.DataFrame({"testcase": ["echo"], "rtt_ms": [[1.0, 2.0]], "t_start": [[1e9, 1e9 + 1]],
                            "tail_t_end": [[1e9, 1e9 + 1]], "t_infer_ms": [[0.5, 0.7]]})
    assert _distribution_columns(results) == ["rtt_ms", "t_infer_ms"]
