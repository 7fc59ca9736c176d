"""Export a run's tables for tools that do not read Parquet (spreadsheets, scripts).

``export_run(run_dir, fmt)`` writes into ``<run>/export/`` by default:

- ``csv``: metrics.csv, results.csv (list columns as JSON text, timestamps ISO 8601);
- ``xlsx``: ``<run-id>.xlsx`` with sheets metrics, results, run (needs openpyxl);
- ``json``: metrics.json, results.json (list of records, 15 significant digits) and run.json;
- ``pickle``: metrics.pkl, results.pkl (pandas DataFrames, list columns as arrays);
- ``parquet``: copies of metrics.parquet and results.parquet (an old run's metrics with
  ``role`` renamed ``program``, as every reader sees it).
"""
from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import CollabError, CollabWarning
from pytest_collab.report.data import RunData, list_columns, load_run

if TYPE_CHECKING:  # pragma: no cover
    import pandas

EXCEL_MAX_ROWS = 1_048_575  # one row of the sheet is the header


def _as_text(frame: pandas.DataFrame) -> pandas.DataFrame:
    """List columns as JSON text; timestamps tz-naive UTC for Excel."""
    out = frame.copy()
    for name in list_columns(frame):
        out[name] = [None if v is None else json.dumps([float(x) for x in v]) for v in frame[name]]
    for name in out.columns:
        if hasattr(out[name], "dt") and getattr(out[name].dt, "tz", None) is not None:
            out[name] = out[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _csv(run: RunData, out: Path) -> list[Path]:
    paths = []
    for name, frame in (("metrics", run.metrics), ("results", run.results)):
        path = out / f"{name}.csv"
        frame = _as_text(frame)
        for col in frame.columns:  # ISO 8601 with an explicit UTC marker
            if str(frame[col].dtype).startswith("datetime64"):
                frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def _xlsx(run: RunData, out: Path) -> list[Path]:
    import importlib.util

    import pandas as pd

    if importlib.util.find_spec("openpyxl") is None:
        raise CollabError("xlsx export needs openpyxl: pip install 'pytest-collab[export]'")
    path = out / f"{run.run.run_id}.xlsx"
    metrics = _as_text(run.metrics)
    if len(metrics) > EXCEL_MAX_ROWS:
        warnings.warn(CollabWarning(
            f"{path}: metrics has {len(metrics)} rows, more than an Excel sheet holds; "
            f"the sheet keeps the first {EXCEL_MAX_ROWS} (use --format csv or parquet for all)"),
            stacklevel=3)
        metrics = metrics.iloc[:EXCEL_MAX_ROWS]
    info = pd.DataFrame([(k, v if isinstance(v, (str, int, float)) else json.dumps(v, default=str))
                         for k, v in run.info.items()], columns=["key", "value"])
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        metrics.to_excel(writer, sheet_name="metrics", index=False)
        _as_text(run.results).to_excel(writer, sheet_name="results", index=False)
        info.to_excel(writer, sheet_name="run", index=False)
    return [path]


def _json(run: RunData, out: Path) -> list[Path]:
    paths = []
    for name, frame in (("metrics", run.metrics), ("results", run.results)):
        path = out / f"{name}.json"
        frame.to_json(path, orient="records", date_format="iso", date_unit="us",
                      double_precision=15, indent=1)
        paths.append(path)
    path = out / "run.json"
    path.write_text(json.dumps(run.info, indent=2, default=str) + "\n", encoding="utf-8")
    return [*paths, path]


def _pickle(run: RunData, out: Path) -> list[Path]:
    paths = []
    for name, frame in (("metrics", run.metrics), ("results", run.results)):
        path = out / f"{name}.pkl"
        frame.to_pickle(path)
        paths.append(path)
    return paths


def _parquet(run: RunData, out: Path) -> list[Path]:
    from pytest_collab.results.metrics import copy_metrics

    paths = [copy_metrics(run.run.metrics, out / run.run.metrics.name)] if run.run.metrics.is_file() else []
    if run.run.results.is_file():
        paths.append(Path(shutil.copy2(run.run.results, out / run.run.results.name)))
    return paths


FORMATS: dict[str, Callable[[RunData, Path], list[Path]]] = {
    "csv": _csv, "xlsx": _xlsx, "json": _json, "pickle": _pickle, "parquet": _parquet}


def export_run(run_dir: Path, fmt: str, out_dir: Path | None = None) -> list[Path]:
    """Write the run's tables as ``fmt`` into ``out_dir`` (default ``<run>/export``)."""
    writer: Any = FORMATS.get(fmt)
    if writer is None:
        raise CollabError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.run.root / "export"
    out.mkdir(parents=True, exist_ok=True)
    return writer(run, out)
