"""Static figures for sections that draw with matplotlib, and the grouping of samples.

Figures are plain ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot:
no global state, no display needed, safe in a thread. :func:`to_data_uri` turns one
into the inline base64 PNG the HTML embeds. The built-in charts are interactive
(:mod:`.charts`); experiments may return either.
"""
from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from pytest_collab.report.outcomes import short_test
from pytest_collab.results.records import PROVENANCE, RESULTS_LEAD

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from matplotlib.figure import Figure

_DPI = 100
__all__ = ["new_figure", "samples_by_test", "short_test", "to_data_uri"]


def new_figure(rows: int = 1, width: float = 9.0, height: float = 3.2) -> tuple[Figure, Any]:
    """A figure with ``rows`` stacked axes sharing x, on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def to_data_uri(fig: Figure) -> str:
    """The figure as ``data:image/png;base64,...`` (self-contained HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.1)  # nothing clipped
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")





def _setting_columns(rows: pandas.DataFrame) -> list[str]:
    """Columns that name a configuration rather than a measurement, varying in ``rows``.

    Text, integer and boolean scalars (``size_bytes``, ``transport``) split a test's
    samples into one distribution each; floats are taken to be measurements.
    """
    import pandas as pd

    from pytest_collab.report.data import list_columns

    skip = {*RESULTS_LEAD, *PROVENANCE, *list_columns(rows)}
    found = []
    for name in rows.columns:
        col = rows[name]
        if name in skip or pd.api.types.is_float_dtype(col) or \
                pd.api.types.is_datetime64_any_dtype(col):
            continue
        if col.astype(str).nunique() > 1:
            found.append(name)
    return found


def samples_by_test(results: pandas.DataFrame, column: str) -> dict[str, Any]:
    """Finite samples of a list column per test and setting (= one parameter set).

    Records of one test that differ in a setting column (message size, transport, ...)
    are kept apart; the records of one setting are concatenated. An experiment that
    declared its headline names its setting columns there.
    """
    import numpy as np

    from pytest_collab.report.headline import declared_headline
    from pytest_collab.report.outcomes import test_label

    functions = {short_test(str(t)).split("[", 1)[0] for t in results["test"].unique()}
    name = test_label if len(functions) == 1 else short_test  # the parameter id says it all
    groups: dict[str, list] = {}
    for test, rows in results.groupby("test", sort=False, observed=True):
        testcase = str(rows["testcase"].iloc[0]) if "testcase" in rows else ""
        headline = declared_headline(testcase)
        settings = _setting_columns(rows)
        if headline is not None:
            settings = [c for c in headline.columns if c in settings]
        for _, row in rows.iterrows():
            value = row[column]
            if value is None or np.ndim(value) == 0:
                continue
            arr = np.asarray(value, dtype=float)
            label = " ".join([name(str(test)), *(f"{k}={row[k]}" for k in settings)])
            groups.setdefault(label, []).append(arr[np.isfinite(arr)])
    return {label: np.concatenate(parts) for label, parts in groups.items()
            if sum(len(p) for p in parts)}
