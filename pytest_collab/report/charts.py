"""Interactive charts: plain data specs that the page draws with the vendored uPlot.

A :class:`Chart` holds its series as numbers; :func:`html.render_report` inlines each
spec as JSON and ``templates/charts.js`` draws it (hover read-out in the legend below
the plot, drag to zoom, double-click to reset). uPlot itself (MIT, see
``templates/vendor/LICENSE-uPlot.txt``) is inlined once, so the report stays one
offline file.

Colours: the ten Tableau colours up to ten series, Kelly's twenty colours of maximum
contrast past that, then dashes; the same key (a program's name) keeps its colour in
every chart of a page.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TABLEAU = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
KELLY = ["#0067a5", "#f38400", "#be0032", "#008856", "#875692", "#f3c300", "#a1caf1", "#882d17",
         "#8db600", "#e68fac", "#654522", "#604e97", "#f99379", "#2b3d26", "#c2b280", "#848482",
         "#b3446c", "#dcd300", "#e25822", "#f6a600"]
DASHES: list[list[int]] = [[], [6, 3], [2, 2], [8, 3, 2, 3]]


def palette(n: int) -> list[tuple[str, list[int]]]:
    """``n`` distinct (colour, dash) pairs."""
    colours = TABLEAU if n <= len(TABLEAU) else KELLY
    return [(colours[i % len(colours)], DASHES[(i // len(colours)) % len(DASHES)]) for i in range(n)]


@dataclass
class Chart:
    """One plot: series of (x, y) points, optional shaded test spans."""

    title: str
    xlabel: str
    ylabel: str
    series: list[dict[str, Any]] = field(default_factory=list)
    bands: list[dict[str, Any]] = field(default_factory=list)
    xlog: bool = False
    ylog: bool = False
    step: bool = False
    height: int = 260
    colours: dict[str, tuple[str, list[int]]] | None = None   # shared across charts of a page
    half: bool = False   # small multiples: two charts side by side
    yrange: tuple[float, float] | None = None   # fixed y axis (an ECDF's 0..1), else from the data

    def add(self, label: str, x: Any, y: Any, key: str | None = None) -> None:
        """A series; points with a None/NaN y break the line (a gap between tests)."""
        self.series.append({"label": label, "key": key or label,
                            "x": [_num(v) for v in x], "y": [_num(v) for v in y]})

    def spec(self) -> dict[str, Any]:
        """The JSON the page's script draws."""
        colours = self.colours or colour_map([s["key"] for s in self.series])
        series = [{**s, "color": colours[s["key"]][0], "dash": colours[s["key"]][1]} for s in self.series]
        return {"title": self.title, "xlabel": self.xlabel, "ylabel": self.ylabel, "series": series,
                "bands": self.bands, "xlog": self.xlog, "ylog": self.ylog, "step": self.step,
                "height": self.height, "yrange": list(self.yrange) if self.yrange else None}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return None if math.isnan(out) or math.isinf(out) else round(out, 6)


def colour_map(keys: list[str]) -> dict[str, tuple[str, list[int]]]:
    """One (colour, dash) per key, shared by every chart that shows these keys."""
    keys = list(dict.fromkeys(keys))
    return dict(zip(keys, palette(len(keys))))


def test_bands(spans: list[tuple[str, float, float]], short: Any) -> list[dict[str, Any]]:
    """Shaded spans, one per test, labelled with the short test id."""
    return [{"from": round(a, 3), "to": round(b, 3), "label": short(t)} for t, a, b in spans]


def joined(pieces: list[tuple[Any, Any]]) -> list[tuple[list, list]]:
    """(x, y) pieces of one line (a program in successive tests) as one line with a gap
    (None) between pieces; pieces that overlap in time stay separate lines."""
    lines: list[tuple[list, list]] = []
    for x, y in pieces:
        x, y = list(x), list(y)
        if not x:
            continue
        if lines and lines[-1][0][-1] < x[0]:
            xs, ys = lines[-1]
            xs.append((xs[-1] + x[0]) / 2)
            ys.append(None)
            xs.extend(x)
            ys.extend(y)
        else:
            lines.append((x, y))
    return lines
