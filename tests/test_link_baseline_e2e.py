"""End to end: testcases/link_baseline on the local lab, then its Parquet files and report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
METRIC_COLUMNS = {
    "run": "string", "test": "string", "device": "string", "program": "string", "pid": "int64",
    "timestamp": "timestamp[us, tz=UTC]", "metric": "string", "value": "double", "unit": "string",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "testcases/link_baseline", "-p", "no:cacheprovider", "-q",
         "--link-sizes=1,256,4096", f"--collab-out={out}", "--collab-report=html"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "collab report:" in done.stdout
    return (out / "latest").resolve()


def _plain_type(field) -> str:
    import pyarrow as pa

    t = field.type
    return str(t.value_type) if pa.types.is_dictionary(t) else str(t)


def test_metrics_parquet_has_the_long_schema(run_dir: Path) -> None:
    schema = pq.read_schema(run_dir / "metrics.parquet")
    assert {f.name: _plain_type(f) for f in schema} == METRIC_COLUMNS
    table = pq.read_table(run_dir / "metrics.parquet").to_pandas()
    assert set(table["device"]) == {"server-1", "rpi-1"}
    assert set(table["program"]) == {"server", "client"}
    assert {"cpu_percent", "rss_bytes", "cpu_user_s", "host_net_rx_bytes"} <= set(table["metric"])
    units = table.drop_duplicates("metric").set_index("metric")["unit"]
    assert units["rss_bytes"] == "B" and units["cpu_percent"] == "%"


def test_results_have_one_row_per_size_and_transport(run_dir: Path) -> None:
    results = pq.read_table(run_dir / "results.parquet").to_pandas()
    assert len(results) == 6
    assert set(results["transport"]) == {"tcp", "grpc"}
    assert sorted(set(results["size_bytes"])) == [1024, 256 * 1024, 4096 * 1024]
    assert list(results.columns[:5]) == ["run", "test", "testcase", "record", "timestamp"]
    assert (results["testcase"] == "link_baseline").all()
    for row in results.itertuples():
        assert len(row.rtt_ms) == row.samples
        assert row.t_start < row.t_end <= row.timestamp.timestamp()   # measured on the device, before record()
        assert row.rtt_p50_ms <= row.rtt_p90_ms <= row.rtt_p99_ms
    big = results[results["size_bytes"] == 4096 * 1024]
    small = results[results["size_bytes"] == 1024]
    assert (big["rtt_p50_ms"].to_numpy() > small["rtt_p50_ms"].to_numpy()).all()


def test_run_json_describes_the_run(run_dir: Path) -> None:
    info = json.loads((run_dir / "run.json").read_text())
    assert info["profile"]["name"] == "local"
    tests = info["tests"]
    assert len(tests) == 2
    for entry in tests.values():
        assert entry["outcome"] == "passed"
        assert entry["devices"] == {"server": ["server-1"], "rpi": ["rpi-1"]}
    assert info["versions"]["python"].startswith(f"{sys.version_info.major}.")
    assert "commit" in info["git"]


def test_report_has_overview_results_and_figures(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    for text in ("Run details", "All results", "Latency distributions", "CPU and memory",
                 "Throughput and round-trip time", "server-1", "rpi-1",
                 "rtt_ms", "link_baseline", 'data-testcase="link_baseline"'):
        assert text in html
    assert html.count("data:image/png;base64,") >= 1 and html.count('class="chart-spec"') >= 3
    assert "http://" not in html and "https://" not in html.replace("https://www.w3.org", "")


def test_program_logs_are_kept(run_dir: Path) -> None:
    logs = sorted(p.name for p in (run_dir / "logs").rglob("*.log"))
    assert logs == ["rpi-1.client.log", "rpi-1.client.log", "server-1.server.log", "server-1.server.log"]
