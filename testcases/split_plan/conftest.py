"""split_plan's settings: the model, its input, what to profile and the margin of the check."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def plan_options(pytestconfig: pytest.Config) -> dict[str, Any]:
    from pytest_collab.split.models import DEFAULT_MODEL

    opt = pytestconfig.getoption
    shape = tuple(int(s) for s in str(opt("split_plan_input")).split(","))
    return {"model": (opt("split_model") or DEFAULT_MODEL).split(",")[0].strip(), "shape": shape,
            "depth": opt("split_plan_depth"), "samples": opt("split_plan_samples"),
            "encodings": [e.strip() for e in str(opt("split_plan_encodings")).split(",") if e.strip()],
            "margin": opt("split_plan_margin"), "threads": opt("split_plan_threads"),
            "objective": opt("split_plan_objective"),
            "link_mbps": opt("split_plan_link_mbps"), "rtt_ms": opt("split_plan_rtt_ms"),
            "burst_kb": opt("split_plan_burst_kb"),
            "sweep": [float(r) for r in str(opt("split_plan_sweep")).split(",") if r.strip()],
            "artifacts": Path(__file__).resolve().parent / ".artifacts"}
