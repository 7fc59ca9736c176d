"""docs/split.md's "Writing your own split experiment in a few lines", run as written on
the local lab (the issue's example): 2 points x 2 encodings of mobilenet_v3_small."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "split.md"


def example() -> str:
    """The first python block after the section's heading."""
    text = DOC.read_text()
    section = text[text.index("## Writing your own split experiment in a few lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_docs_example_runs_as_written(pytester: pytest.Pytester) -> None:
    code = example()
    assert "split.run(collab, model, point=point, encoding=encoding" in code
    pytester.makepyfile(test_my_split=code)
    # the example builds a randomly initialised model: seed it, so int8's agreement is the
    # same on every machine (unseeded, a fresh clone saw 0.969 at one cut)
    pytester.makeconftest("import pytest, torch\n\n@pytest.fixture(autouse=True)\n"
                          "def _seed():\n    torch.manual_seed(0)\n")
    result = pytester.runpytest("--lan=local", f"--collab-out={pytester.path / 'reports'}",
                                "-p", "no:cacheprovider", "-p", "no:logging")
    result.assert_outcomes(passed=4)
