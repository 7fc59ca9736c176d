"""Two experiments with same-named helper modules each get their own (issue: `import inputs`
in one experiment loaded another's `inputs.py` when both ran in one session)."""
from __future__ import annotations

import pytest


def _experiment(pytester: pytest.Pytester, name: str, value: str) -> None:
    folder = pytester.mkdir(name)
    (folder / "inputs.py").write_text(f"WHO = {value!r}\n")
    (folder / f"test_{name}.py").write_text(
        "import inputs\n\n"
        f"def test_top_level_import():\n    assert inputs.WHO == {value!r}\n\n"
        "def test_lazy_import():\n"
        "    import inputs as again\n"
        f"    assert again.WHO == {value!r}\n")


def test_same_named_helpers_do_not_shadow_each_other(pytester: pytest.Pytester) -> None:
    _experiment(pytester, "alpha", "alpha")
    _experiment(pytester, "beta", "beta")
    result = pytester.runpytest("alpha", "beta")
    result.assert_outcomes(passed=4)


def test_same_named_helpers_in_reverse_order(pytester: pytest.Pytester) -> None:
    _experiment(pytester, "alpha", "alpha")
    _experiment(pytester, "beta", "beta")
    result = pytester.runpytest("beta", "alpha")
    result.assert_outcomes(passed=4)


def test_without_isolation_the_collision_is_real(pytester: pytest.Pytester) -> None:
    """The same layout without the plugin: pytest alone lets the first helper win."""
    _experiment(pytester, "alpha", "alpha")
    _experiment(pytester, "beta", "beta")
    result = pytester.runpytest("alpha", "beta", "-p", "no:collab")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 1


def test_one_rule_says_what_is_a_test_cases_code(tmp_path) -> None:
    """Sync, the image's code layer and bundles ship the same files (one rule, testcase.is_code)."""
    from pytest_collab.containers.images import runtime_spec
    from pytest_collab.share.bundle import code_members
    from pytest_collab.testcase import is_code
    from pytest_collab.transport.base import sync_skips

    case = tmp_path / "exp"
    for rel in ("test_exp.py", "helper.py", "data/x.npy", "__pycache__/helper.cpython-311.pyc",
                ".artifacts/head.pt2", "reports/run/run.json", "stale.pyc"):
        (case / rel).parent.mkdir(parents=True, exist_ok=True)
        (case / rel).write_bytes(b"x")
    code = {"test_exp.py", "helper.py", "data/x.npy"}
    assert set(code_members(case)) == code
    assert {p[len("code/"):] for p in runtime_spec(case, "parent", "amd64").files if p.startswith("code/")} == code
    every = {p.relative_to(case).as_posix() for p in case.rglob("*") if p.is_file()}
    assert {p for p in every if not sync_skips(tuple(p.split("/")))} == code
    assert {p for p in every if is_code(tuple(p.split("/")))} == code
