"""The report in a real browser (Playwright driving Debian's chromium): what a reader sees.

The run is the synthetic one of test_report.py (real measurements, a failed and an
interrupted test). Checks: the summary is the first table and sorts numerically, a
failed test's reason is on the page, every chart is drawn, and the page asks the
network for nothing.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("pandas")
pytest.importorskip("jinja2")
sync_api = pytest.importorskip("playwright.sync_api")

from services import missing  # noqa: E402
from test_report import REASON, make_run  # noqa: E402

from pytest_collab.report import render_report  # noqa: E402
from pytest_collab.results.rundir import RunDir  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@pytest.fixture(scope="module")
def page_of() -> Iterator:
    """``page_of(html_path)`` -> (page, requests): a loaded page and every URL it asked for."""
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        missing("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).is_file() else shutil.which(
            "chromium"), args=ARGS)
        pages = []

        def load(path: Path) -> tuple:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            pages.append(page)
            assert not errors, errors
            return page, requests

        yield load
        browser.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    run = make_run(tmp_path_factory.mktemp("reports"), problems=True)
    render_report(run.root)
    return run


def test_summary_is_the_first_table_and_sorts_numerically(page_of, report: RunDir) -> None:
    page, _ = page_of(report.report_html)
    first = page.locator("table").first
    assert "summary" in (first.get_attribute("class") or "")
    headers = first.locator("thead th").all_inner_texts()
    assert headers[:3] == ["outcome", "size", "mode"]
    size = headers.index("size")
    first.locator("thead th").nth(size).click()
    column = first.locator(f"tbody tr td:nth-child({size + 1})").all_inner_texts()
    values = [int(v.replace(",", "")) for v in column]
    assert values == sorted(values) and values[-1] == 8388608  # 64 < 4096 < 1,048,576: numbers, not text
    first.locator("thead th").nth(size).click()
    column = first.locator(f"tbody tr td:nth-child({size + 1})").all_inner_texts()
    assert [int(v.replace(",", "")) for v in column] == sorted(values, reverse=True)


def test_a_failed_tests_reason_is_on_the_page(page_of, report: RunDir) -> None:
    page, _ = page_of(report.report_html)
    reason = page.locator("pre.reason").first
    assert reason.is_visible()
    assert REASON.splitlines()[-1].strip() in reason.inner_text()
    assert page.get_by_text("tail_server.py on jetson-1 (signal 9)").is_visible()
    badge = page.locator(".problems-box a.badge.interrupted")
    assert badge.inner_text().endswith("interrupted")
    log = page.locator(".problem a[href$='jetson-1.tail_server.log']")
    assert (report.root / log.get_attribute("href")).is_file()


def test_charts_are_drawn_offline(page_of, report: RunDir) -> None:
    page, requests = page_of(report.report_html)
    specs = page.locator("script.chart-spec").count()
    assert specs >= 4
    assert page.locator("div.chart canvas").count() == specs  # every chart drawn by the inlined uPlot
    assert page.locator(".chart .u-legend").first.is_visible()  # the legend below the plot, not on it
    outside = [u for u in requests if not u.startswith(("file:", "data:", "about:", "blob:"))]
    assert outside == []
    html = report.report_html.read_text()
    assert "http://" not in html and "https://" not in html
