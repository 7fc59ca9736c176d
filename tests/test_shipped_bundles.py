"""The bundles CI replays must hold the code that is in testcases/ now.

``scripts/ci-replay.sh`` refuses a bundle whose code differs from its test case (the
import would overwrite someone's work), so a changed shipped test case without a re-made
bundle fails CI only after setup. This test says so in ``make test``, naming the fix.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_collab.share.bundle import code_members, read_bundle
from pytest_collab.testcase import testcase_path as folder_of

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "bundles").glob("*.collab.tar.gz"))


def test_bundles_are_shipped() -> None:
    assert SHIPPED, "bundles/ holds no bundle: CI's replay gate would have nothing to replay"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_bundle_holds_the_current_code(path: Path) -> None:
    bundle = read_bundle(path)
    current = code_members(folder_of(bundle.name, ROOT))
    shipped = bundle.code_files()
    stale = sorted(rel for rel in set(current) | set(shipped) if current.get(rel) != shipped.get(rel))
    assert not stale, (f"{path.relative_to(ROOT)} holds old code of testcases/{bundle.name} "
                       f"({', '.join(stale)}); re-make it: `make bundles`, then commit bundles/")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_bundle_gates_with_the_checked_in_tolerances(path: Path) -> None:
    bundle = read_bundle(path)
    rules = path.with_name(f"{bundle.name}.tolerances.json")
    assert bundle.tolerances == json.loads(rules.read_text()), (
        f"{path.relative_to(ROOT)} was exported with other tolerances than {rules.relative_to(ROOT)}; "
        "re-make it: `make bundles`")
