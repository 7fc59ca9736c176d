"""The dashboard in a real browser (Playwright driving Debian's chromium).

Each test saves a screenshot of its page (``$COLLAB_DASHBOARD_SHOTS`` keeps them).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from dashboard_helpers import ROOT, TOKEN, push_image, push_model_artifact, pytest_cmd, run_finished

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (fails under CI=true) with the reason
    expect = None

LOCAL_DEVICES = ["server-1", "jetson-1", "jetson-2", "rpi-1", "rpi-2", "rpi-3", "rpi-4"]


def test_lab_page_lists_the_local_labs_devices_and_rechecks_them(page, served: str, shots: Path) -> None:
    page.goto(f"{served}/lab/local")
    page.wait_for_selector("#devices tbody tr[data-device='rpi-4']")
    names = page.locator("#devices tbody tr").evaluate_all("rows => rows.map(r => r.dataset.device)")
    assert names == LOCAL_DEVICES
    assert page.locator("#auth").inner_text() == "actions enabled"
    page.click("#check")
    page.wait_for_function("document.querySelectorAll('#devices td.health .pill.ok').length === 7", timeout=90_000)
    assert re.search(r"ok \d", page.locator("tr[data-device='server-1'] td.health").inner_text())
    page.click("#refresh")
    page.wait_for_function("/gathering facts: done/.test(document.getElementById('busy').textContent)",
                           timeout=90_000)
    assert "not saved" in page.locator("#busy").inner_text()  # the built-in profile is read-only
    assert page.locator("tr[data-device='rpi-1'] td").nth(3).inner_text() in ("amd64", "arm64")
    page.locator("tr[data-device='rpi-1'] button").click()
    facts = page.locator("#facts").inner_text()
    assert "collab_arch" in facts and "not saved: built-in profile" in facts
    page.screenshot(path=str(shots / "lab.png"), full_page=True)


def test_registry_page_lists_a_pushed_image_and_an_artifact(page, served: str, registry, shots: Path) -> None:
    digest, size = push_image(registry.url, "split/resnet18-head", "arm64", arch="arm64")
    push_image(registry.url, "split/resnet18-head", "amd64")
    push_model_artifact(registry.url, "models/mobilenet", "v1")
    page.goto(f"{served}/registry")
    row = page.locator("tr[data-ref='split/resnet18-head:arm64']")
    row.wait_for()
    page.screenshot(path=str(shots / "registry-all.png"), full_page=True)
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "split/resnet18-head" and cells[1] == "split" and cells[2] == "arm64"
    assert digest.startswith(cells[4]) and cells[5] == f"{size} B"
    assert "application/vnd.collab.model.v1" in page.locator("tr[data-ref='models/mobilenet:v1']").inner_text()
    page.fill("#lookup [name=task]", "split")
    page.fill("#lookup [name=model]", "resnet18-head")
    page.fill("#lookup [name=arch]", "arm64")
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#advice:not([hidden])")
    assert "exists" in page.locator("#advice").inner_text()
    assert page.locator("#artifacts tbody tr").count() == 1
    page.screenshot(path=str(shots / "registry.png"), full_page=True)


def test_ensure_from_the_registry_page_shows_its_progress(page, served: str, registry, docker_client,
                                                         shots: Path) -> None:
    push_image(registry.url, "split/resnet18-tail", "amd64")
    page.goto(f"{served}/registry")
    page.locator("tr[data-ref='split/resnet18-tail:amd64'] button").click()
    progress = page.locator("#progress")
    expect(progress).to_have_attribute("data-state", "done", timeout=120_000)
    text = progress.inner_text()
    assert "exists" in text and "pull" in text and "pulled" in text
    page.screenshot(path=str(shots / "registry-ensure.png"), full_page=True)
    docker_client.images.remove(f"{registry.host}/split/resnet18-tail:amd64")


def test_runs_page_lists_a_finished_run_and_opens_its_report(page, served: str, finished_run: Path,
                                                            shots: Path) -> None:
    page.goto(f"{served}/runs")
    row = page.locator(f"tr[data-run='{finished_run.name}']")
    row.wait_for()
    text = row.inner_text()
    assert "passed" in text and "dashlab" in text and "2 passed" in text
    assert re.search(r"\d+\.\d s", text)
    page.screenshot(path=str(shots / "runs.png"), full_page=True)
    with page.expect_popup() as popup:
        row.locator("a.open").click()
    report = popup.value
    report.wait_for_load_state()
    assert report.url.endswith(f"/runs/{finished_run.name}/report")
    assert finished_run.name in report.content()
    report.screenshot(path=str(shots / "report.png"))


def test_live_page_shows_a_running_test_and_changing_metrics(page, served: str, project: Path, reports: Path,
                                                             shots: Path) -> None:
    from pytest_collab.lan.profile import load_profile
    from pytest_collab.leases.files import acquire, owner_info
    from pytest_collab.select import Constraint

    # this test holds the lab's only server, so the run first waits for its lease
    lease = acquire(load_profile("dashlab", project), Constraint({"server": 1}), owner_info("holder", "me"), timeout=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen(pytest_cmd(reports, "testcases/tiny/test_busy.py"), cwd=project, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page.goto(f"{served}/live")
        busy = "tr[data-test='testcases/tiny/test_busy.py::test_busy']"
        session = page.locator(f".session:has({busy}):has(.pill.running)")  # this run, not an earlier one
        session.wait_for(timeout=90_000)
        test_row = session.locator(busy)
        expect(test_row).to_contain_text("waiting for a lease", timeout=60_000)
        page.screenshot(path=str(shots / "live-waiting.png"), full_page=True)
        lease.release()
        expect(test_row).to_contain_text("running", timeout=60_000)
        metric = session.locator(".device[data-device='rpi-1'] .metric[data-metric='mem']")
        expect(metric).to_have_text(re.compile(r"memory: \d"), timeout=90_000)
        assert "running" in test_row.inner_text()
        programs = session.locator("table.programs tbody").inner_text()
        assert "server-1" in programs and "rpi-1" in programs
        first = metric.inner_text()
        time.sleep(2.0)
        second = metric.inner_text()
        assert first != second, f"memory did not change between two reads: {first!r}"
        session.locator("table.programs a.log").first.click()
        page.wait_for_function("/step \\d+ holding/.test(document.getElementById('log').textContent)")
        page.screenshot(path=str(shots / "live.png"), full_page=True)
    finally:
        lease.release()
        run.terminate()
        out, _ = run.communicate(timeout=60)
    assert "collab run folder" in out or run.returncode != 0  # it ran through the plugin


def test_a_mutating_request_without_the_token_is_refused(page, served: str, finished_run: Path) -> None:
    url = f"{served}/api/runs/{finished_run.name}"
    assert page.request.delete(url).status == 401
    assert page.request.delete(url, headers={"Authorization": "Bearer wrong-token"}).status == 403
    assert page.request.post(f"{served}/api/lan/dashlab/check").status == 401
    assert finished_run.is_dir()
    # the page itself holds the token (from the printed URL) and may act
    ok = page.request.post(f"{served}/api/runs/{finished_run.name}/tag",
                           headers={"Authorization": f"Bearer {TOKEN}"}, data={"tag": "baseline"})
    assert ok.status == 200 and ok.json()["tags"] == ["baseline"]


def test_runs_page_compares_tags_and_deletes_runs(page, served: str, project: Path, reports: Path,
                                                 finished_run: Path, shots: Path) -> None:
    second = run_finished(project, reports)
    page.goto(f"{served}/runs")
    for run in (finished_run, second):
        page.locator(f"tr[data-run='{run.name}'] input[type=checkbox]").check()
    page.click("#compare")
    page.wait_for_selector("section.compare")
    heading = page.locator("section.compare h2").inner_text()
    assert f"{second.name} vs baseline {finished_run.name}" in heading and "PASS" in heading
    assert "accuracy" in page.locator(".compare-body").inner_text()
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    page.goto(f"{served}/runs")
    row = page.locator(f"tr[data-run='{second.name}']")
    page.once("dialog", lambda dialog: dialog.accept("candidate"))
    row.locator("button", has_text="tag").click()
    expect(row.locator(".pill", has_text="candidate")).to_be_visible()
    assert json.loads((second / "run.json").read_text())["tags"] == ["candidate"]
    (second / "report.html").unlink()  # a run without a report offers to render it
    page.goto(f"{served}/runs/{second.name}/report")
    page.click("#render button")
    page.wait_for_url(f"{served}/runs/{second.name}/report")
    expect(page.locator("h1")).to_contain_text(f"pytest-collab run {second.name}", timeout=60_000)
    assert (second / "report.html").is_file()
    page.goto(f"{served}/runs")
    row = page.locator(f"tr[data-run='{second.name}']")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.danger").click()
    expect(row).to_have_count(0)
    assert not second.exists() and finished_run.exists()


@pytest.mark.parametrize("path, needles", [
    ("/lab/nosuchlab", ["nosuchlab.yaml", "no LAN profile named"]),
    ("/lab/broken", ["broken.yaml", "devices[0]", "kind"]),
    ("/runs/not-a-run/report", ["not-a-run/run.json", "missing", "a pytest-collab run folder?"]),
])
def test_bad_input_shows_an_error_page(page, served: str, project: Path, reports: Path, path: str,
                                       needles: list[str], shots: Path) -> None:
    (project / "network_profiles" / "broken.yaml").write_text("devices:\n  - name: x\n")
    (reports / "not-a-run").mkdir(parents=True, exist_ok=True)
    response = page.goto(served + path)
    assert response is not None and response.status in (400, 404)
    text = page.locator("#error").inner_text()
    assert all(n in text for n in needles), text
    assert "Traceback" not in page.content()
    page.screenshot(path=str(shots / f"error-{path.rsplit('/', 1)[-1]}.png"))
