"""Plugin behaviour through pytester: options, precedence, markers, selection, xdist merge."""
from __future__ import annotations

import json
import textwrap

import pytest

pytest_plugins = ["pytester"]

SETTINGS_TEST = """
from pytest_collab.session import get_session

def test_settings(request):
    s = get_session(request.config).settings
    print("SETTINGS", s["out"], s["hz"], s["report"])
"""


def test_help_lists_options_with_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "pytest-collab: experiments on a lab of devices" in out
    for flag in ("--lan=NAME|PATH", "--collab-out=DIR", "--collab-report={html,none}", "--collab-hz=HZ"):
        assert flag in out
    assert "default: local" in out
    assert "PYTEST_COLLAB_LAN" in out
    assert "collab_out" in out  # the ini key


def test_markers_list_devices(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.devices(**kinds, tags=*): run this experiment on devices of the LAN profile*"])


@pytest.mark.parametrize(
    "cli, env, ini, expected",
    [
        (["--collab-out=cli_out"], "env_out", "ini_out", "cli_out"),
        ([], "env_out", "ini_out", "env_out"),
        ([], None, "ini_out", "ini_out"),
        ([], None, None, "reports"),
    ],
)
def test_option_precedence(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                           cli: list[str], env: str | None, ini: str | None, expected: str) -> None:
    if env is None:
        monkeypatch.delenv("PYTEST_COLLAB_OUT", raising=False)
    else:
        monkeypatch.setenv("PYTEST_COLLAB_OUT", env)
    if ini:
        pytester.makeini(f"[pytest]\ncollab_out = {ini}\n")
    pytester.makepyfile(SETTINGS_TEST)
    result = pytester.runpytest("-s", *cli)
    result.stdout.fnmatch_lines([f"*SETTINGS {expected} 10.0 none"])


@pytest.mark.parametrize(
    "where, message",
    [
        ("cli", "command line --collab-hz: invalid value '-3' for --collab-hz: expected a number greater than 0"),
        ("env", "environment variable PYTEST_COLLAB_HZ: invalid value 'fast' for --collab-hz*"),
        ("ini", "ini key collab_hz: invalid value 'x' for --collab-hz*"),
    ],
)
def test_bad_option_names_its_source(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                     where: str, message: str) -> None:
    pytester.makepyfile(SETTINGS_TEST)
    args = []
    if where == "cli":
        args = ["--collab-hz=-3"]
    elif where == "env":
        monkeypatch.setenv("PYTEST_COLLAB_HZ", "fast")
    else:
        pytester.makeini("[pytest]\ncollab_hz = x\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_report_header_names_profile_and_devices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["collab: LAN 'local' from *local.yaml: 7 device(s): server-1 (server)*rpi-4 (rpi)"])


def test_broken_profile_is_a_usage_error_naming_file_and_key(pytester: pytest.Pytester) -> None:
    profile = pytester.path / "lab.yaml"
    profile.write_text("devices:\n  - name: a\n    kind: rpi\n    address: 42\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(f"--lan={profile}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {profile}: devices[0].address: expected a string, got 42 (int)"])


UNMEETABLE = """
import pytest

@pytest.mark.devices(jetson=5)
def test_needs_five_jetsons(collab):
    pass

@pytest.mark.devices(rpi=1)
def test_fits(collab_devices):
    assert [d.kind for d in collab_devices["rpi"]] == ["rpi"]
"""


def test_unmeetable_constraint_skips_with_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNMEETABLE)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*profile 'local' has 2 device(s) matching 'jetson'*the test needs 5*"])


def test_unmeetable_constraint_fails_when_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNMEETABLE)
    result = pytester.runpytest("--collab-strict-devices")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*matching 'jetson'*the test needs 5*"])


def test_bad_marker_argument_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.devices(rpi=0)
        def test_bad(collab_devices):
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.devices*"])


PROGRAM = """
import json, os, sys, time
print("READY", flush=True)
print("COLLAB_RESULT " + json.dumps({"worker": os.environ.get("COLLAB_DEVICE"), "n": int(sys.argv[1])}), flush=True)
time.sleep(0.3)
"""

EXPERIMENT = """
import pytest

@pytest.mark.devices(rpi=1)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_program(collab, n):
    p = collab.start("rpi", "prog.py", n, ready="READY")
    p.wait(timeout=60)
    collab.record(**p.results()[0])
"""


def test_xdist_workers_merge_into_one_run(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(prog=PROGRAM, test_exp=EXPERIMENT)
    result = pytester.runpytest_subprocess("-n", "2", "--collab-out=out", "--collab-hz=20")
    result.assert_outcomes(passed=4)
    runs = [p for p in (pytester.path / "out").iterdir() if p.name != "latest"]
    assert len(runs) == 1
    run = runs[0]
    assert not (run / ".parts").exists()
    import pandas as pd

    results = pd.read_parquet(run / "results.parquet")
    assert sorted(results["n"]) == [1, 2, 3, 4]
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert metrics["test"].nunique() == 4
    info = json.loads((run / "run.json").read_text())
    assert len(info["tests"]) == 4
    assert {t["outcome"] for t in info["tests"].values()} == {"passed"}
    assert info["workers"] == 2


def test_record_clash_with_parameter_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.parametrize("split", ["a"])
        def test_x(collab, split):
            collab.record(split="a")      # same value: fine
            collab.record(split="b")      # different: an error
    """))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*record(split=...) clashes with the test parameter 'split'*"])


def test_report_asked_without_any_lab_test_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("--collab-report=html", "--collab-out=out")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*no test used the lab*collab report reports/latest*"])
    assert not (pytester.path / "out").exists()


def test_test_cases_read_the_resolved_lab_not_the_raw_flag(tmp_path) -> None:
    """PYTEST_COLLAB_LAN=emulated is the emulated lab for testcases/federated too (not local)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def skips(**env: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest", "testcases/federated", "--setup-plan", "-rs",
                               "-p", "no:cacheprovider", f"--collab-out={tmp_path}"], cwd=root,
                              capture_output=True, text=True, timeout=120, env={**os.environ, **env})
        return done.stdout

    assert "local lab runs clients2-iid only" in skips(PYTEST_COLLAB_LAN="local")
    assert "local lab runs clients2-iid only" not in skips(PYTEST_COLLAB_LAN="emulated")
