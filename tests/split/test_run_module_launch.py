"""``collab.start(target, "module:NAME")``: a device program that is a module of the
packages shipped to every device (the device kit's generic programs), not a file of the
test's folder."""
from __future__ import annotations

import pytest


def test_start_runs_a_devicekit_module_on_the_local_lab(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod="""
import pytest

@pytest.mark.devices(server=1)
def test_mod(collab):
    p = collab.start("server", "module:collab_devicekit.split_tail", "--help")
    assert p.wait(timeout=60) == 0
    assert p.name == "split_tail" and p.argv[1:3] == ["-m", "collab_devicekit.split_tail"]
    assert any("--artifact" in line for line in p.output())
""")
    result = pytester.runpytest("--lan=local", f"--collab-out={pytester.path / 'reports'}")
    result.assert_outcomes(passed=1)


def test_a_missing_program_file_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_missing="""
import pytest

@pytest.mark.devices(server=1)
def test_missing(collab):
    with pytest.raises(Exception, match="'nope.py' not found"):
        collab.start("server", "nope.py")
""")
    result = pytester.runpytest("--lan=local", f"--collab-out={pytester.path / 'reports'}")
    result.assert_outcomes(passed=1)
