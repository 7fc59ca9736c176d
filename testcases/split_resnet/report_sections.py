"""split_resnet's report section: the split library's figures (pytest_collab.split.report_figures),
cuts labelled by their stage names (the ``split`` column), in execution order. The latency
distribution is the report's own ECDF of ``latency_ms`` (HEADLINE names it, drawn once)."""
from __future__ import annotations

from pytest_collab.split import report_figures

TESTCASE = "split_resnet"
#: the summary table: one row per model, split point and encoding; median latency first
HEADLINE = {"columns": ["model", "split", "encoding"], "key": "p50_ms",
            "also": ["p99_ms", "qps_with_overhead", "wire_bytes", "top1_agreement", "max_abs_logit_error"],
            "distributions": ["latency_ms"]}
SECTION = "Latency breakdown, bytes on the wire and fidelity per split point"

applies, render = report_figures.section(TESTCASE, point="split")
report_figures.register(SECTION, applies, render)
