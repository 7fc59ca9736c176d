"""pytest-native output through pytester: the headline table at session end, JUnit
properties, pytest-html extras; a real experiment on a private copy of the local lab."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from pytest_collab.lan.profile import EMBEDDED_DIR

pytest_plugins = ["pytester"]

PROGRAM = """
import json, sys
n = int(sys.argv[1])
print("READY", flush=True)
print("COLLAB_RESULT " + json.dumps({"size_bytes": 1024 * n, "throughput_mbps": 100.0 * n,
                                     "rtt_ms": [1.0 / n + 0.01 * i for i in range(10)]}), flush=True)
"""

EXPERIMENT = """
import pytest

@pytest.mark.devices(rpi=1)
@pytest.mark.parametrize("n", [1, 16, 4])
def test_link(collab, n):
    p = collab.start("rpi", "prog.py", n, ready="READY")
    p.wait(timeout=60)
    collab.record(**p.results()[0])


@pytest.mark.devices(rpi=1)
def test_broken(collab):
    raise AssertionError("the link dropped")
"""

SECTIONS = """
HEADLINE = {"columns": ["n", "size_bytes"], "key": "throughput_mbps", "also": ["rtt_ms"]}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """testcases/link with its HEADLINE; a private copy of the local lab (leases of its own)."""
    case = pytester.mkdir("testcases") / "link"
    case.mkdir()
    (case / "prog.py").write_text(PROGRAM)
    (case / "test_link.py").write_text(EXPERIMENT)
    (case / "report_sections.py").write_text(SECTIONS)
    shutil.copy(EMBEDDED_DIR / "local.yaml", pytester.path / "lab.yaml")
    return pytester


def test_terminal_shows_each_experiments_headline(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--lan=lab.yaml", "--collab-out=out", "--collab-hz=20",
                                          "--junitxml=junit.xml")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*collab: link: 4 row(s), key figure throughput_mbps (higher is better)*",
        "test*outcome*n*size_bytes*[*]throughput_mbps[*]*rtt_ms",
    ])
    table = out[out.index("collab: link:"):].splitlines()
    rows = [line.split() for line in table[3:7]]
    assert [r[1] for r in rows] == ["passed", "passed", "passed", "failed"]
    assert [r[3] for r in rows[:3]] == ["1,024", "16,384", "4,096"]  # in the order the tests ran
    assert rows[1][4:6] == ["1,600", "(best)"]  # the key figure's best value, higher is better
    assert rows[3] == ["test_broken", "failed"]  # recorded nothing, still listed

    # JUnit: run id, devices, lease wait and the headline figures of each test
    tree = ET.parse(project.path / "junit.xml")
    props = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in tree.iter("testcase")}
    run_id = next((project.path / "out").glob("2*")).name
    four = props["test_link[4]"]
    assert four["collab_run_id"] == run_id and four["collab_devices"].startswith("rpi: rpi-")
    assert float(four["collab_throughput_mbps"]) == 400.0
    assert float(four["collab_rtt_ms"]) == pytest.approx(0.25 + 0.045)  # median of the samples
    assert float(four["collab_lease_wait_s"]) >= 0.0
    assert props["test_broken"]["collab_run_id"] == run_id and "collab_throughput_mbps" not in props["test_broken"]


def test_pytest_html_gets_the_headline_and_a_link(project: pytest.Pytester) -> None:
    pytest.importorskip("pytest_html")
    result = project.runpytest_subprocess("--lan=lab.yaml", "--collab-out=out", "--collab-hz=20",
                                          "--collab-report=html", "--html=html/pytest.html", "-k", "not broken")
    result.assert_outcomes(passed=3)
    page = (project.path / "html" / "pytest.html").read_text()
    run_id = next((project.path / "out").glob("2*")).name
    link = f"../out/{run_id}/report.html"
    assert "collab headline" in page and "throughput_mbps=1600" in page
    assert link in page and (project.path / "html" / link).resolve().is_file()


def test_journal_reader_reads_only_whole_new_lines(tmp_path) -> None:
    from pytest_collab.report.pytest_output import JournalReader

    path = tmp_path / "results-main.jsonl"
    reader = JournalReader(path)
    assert reader.rows_of("t::a") == []  # no journal yet
    path.write_text('{"test": "t::a", "x": 1}\n{"test": "t::b", "x": 2}\n{"test": "t::a", "x"')
    assert [r["x"] for r in reader.rows_of("t::a")] == [1]  # the half-written line waits
    with open(path, "a") as fh:
        fh.write(': 3}\n')
    assert [r["x"] for r in reader.rows_of("t::a")] == [1, 3] and [r["x"] for r in reader.rows_of("t::b")] == [2]


def test_terminal_marks_the_best_passed_value_by_direction() -> None:
    from pytest_collab.report.headline import Headline
    from pytest_collab.report.summary import Cell, Summary
    from pytest_collab.report.terminal import table_lines

    def summary(key: str) -> Summary:
        rows = [[Cell(o, o), Cell(f"{v:g}", v)] for o, v in (("passed", 5.0), ("passed", 2.0), ("failed", 1.0))]
        return Summary("x", Headline("x", (), key, ()), ["outcome", key], rows, ["passed", "passed", "failed"])

    lower = table_lines(summary("p50_ms"))
    assert lower[0].split() == ["outcome", "*p50_ms*"] and lower[3].endswith("2 (best)")  # not the failed 1
    higher = table_lines(summary("qps_with_overhead"))
    assert higher[2].endswith("5 (best)")
