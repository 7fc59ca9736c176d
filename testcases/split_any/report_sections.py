"""split_any's report section: the split library's figures (pytest_collab.split.report_figures)
for any model: cut points in execution order, boundary bytes against the uint8 input's,
fidelity (and held-out accuracy with --split-trained) per encoding, the latency breakdown."""
from __future__ import annotations

from pytest_collab.split import report_figures

TESTCASE = "split_any"
HEADLINE = {"columns": ["model", "point", "encoding"], "key": "p50_ms",
            "also": ["p99_ms", "wire_bytes", "boundary_vs_input", "top1_agreement", "max_logit_error", "accuracy"],
            "distributions": ["latency_ms"]}
SECTION = "Split of any model: latency, boundary bytes and fidelity per cut point"

applies, render = report_figures.section(TESTCASE)
report_figures.register(SECTION, applies, render)
