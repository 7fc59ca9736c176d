"""End to end: ``pytest testcases/split_any`` on the local lab with a non-ResNet model
writes the expected columns, and its report sections draw from them."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_collab.split import report_figures

pytest.importorskip("torchvision")
pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("model", "point", "encoding", "cut_index", "cut_point", "boundary_tensors", "boundary_bytes",
           "boundary_vs_input", "wire_bytes", "image_bytes", "top1_agreement", "max_logit_error",
           "p50_ms", "p99_ms", "head_ms_p50", "tail_ms_p50", "lower_bound_ms", "latency_ms", "t_start", "t_end")


def test_split_any_mobilenet_on_the_local_lab(tmp_path):
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "pytest", "testcases/split_any", "--lan=local", f"--collab-out={out}",
           "--split-model", "mobilenet_v3_small", "--split-points", "features.3,full_offload",
           "--split-encodings", "int8", "--split-samples", "4", "--split-input", "3,32,32",
           "-q", "-p", "no:cacheprovider", "-p", "no:logging"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    rows = pd.read_parquet(next(out.rglob("results.parquet")))
    assert sorted(rows["point"]) == ["features.3", "full_offload"]
    for column in COLUMNS:
        assert column in rows.columns, column
    cut = rows[rows["point"] == "features.3"].iloc[0]
    assert cut["model"] == "mobilenet_v3_small" and cut["encoding"] == "int8" and cut["cut_index"] >= 0
    assert cut["boundary_bytes"] == 24 * 4 * 4 * 4 and cut["image_bytes"] == 3 * 32 * 32
    full = rows[rows["point"] == "full_offload"].iloc[0]
    assert full["cut_index"] == -1 and full["top1_agreement"] == 1.0 and full["max_logit_error"] == 0

    # by path: split_resnet has a report_sections.py too
    spec = importlib.util.spec_from_file_location("split_any_sections", ROOT / "testcases/split_any/report_sections.py")
    assert spec is not None and spec.loader is not None
    report_sections = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report_sections)
    assert report_sections.applies(rows)
    assert list(report_figures.rows(rows, "split_any")["point"]) == ["full_offload", "features.3"]   # execution order
    assert len(report_sections.render(rows)) == 3
