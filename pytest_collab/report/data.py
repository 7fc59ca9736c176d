"""Load one run folder for the report and the exports: run.json plus both tables.

A run that crashed or recorded nothing still loads: a missing table becomes an empty
frame with the right columns and a note, so a report can always be written. A missing
run folder, a folder that holds none of a run's files, or a table that exists but is
unreadable, raises RunDataError (never an empty report).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import RunDataError
from pytest_collab.results.rundir import RunDir

if TYPE_CHECKING:  # pragma: no cover
    import pandas


@dataclass
class RunData:
    """Everything a report section may look at."""

    run: RunDir
    info: dict[str, Any]
    metrics: pandas.DataFrame
    results: pandas.DataFrame
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: Path | RunDir, metrics: bool = True) -> RunData:
    """run.json and both tables; ``metrics=False`` leaves the (large) metrics table empty,
    for readers that only need results (the terminal summary)."""
    from pytest_collab.results.metrics import metrics_schema, read_metrics
    from pytest_collab.results.records import RESULTS_LEAD, read_results

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise RunDataError(f"{run.root}: run folder not found; pass a folder under reports/, "
                           "a run id, or 'latest'")
    if not any(p.exists() for p in (run.run_json, run.metrics, run.results, run.parts)):
        raise RunDataError(f"{run.root}: not a pytest-collab run folder (no run.json, metrics.parquet "
                           "or results.parquet); pass a folder under reports/, a run id, or 'latest'")
    notes: list[str] = []
    info: dict[str, Any] = {}
    if run.run_json.is_file():
        info = run.read_run_json()
    else:
        notes.append(f"{run.run_json.name} missing: run details unknown")
    if run.metrics.is_file() and metrics:
        frame = read_metrics(run.root)
    else:
        frame = metrics_schema().empty_table().to_pandas()
        if metrics:
            notes.append(f"{run.metrics.name} missing: no metrics recorded")
    if run.results.is_file():
        results = read_results(run.root)
    else:
        import pandas as pd

        results = pd.DataFrame({name: [] for name in RESULTS_LEAD})
        notes.append(f"{run.results.name} missing: no results recorded")
    return RunData(run, info, frame, results, notes)


def list_columns(results: pandas.DataFrame) -> list[str]:
    """Results columns holding sample distributions (Parquet list<double>)."""
    import numpy as np

    found = []
    for name in results.columns:
        first = next((v for v in results[name] if v is not None and not _is_nan(v)), None)
        if isinstance(first, (list, tuple, np.ndarray)):
            found.append(name)
    return found


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
