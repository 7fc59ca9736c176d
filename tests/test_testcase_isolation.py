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
