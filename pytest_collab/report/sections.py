"""The extension point for experiment-specific report sections.

An experiment (split inference, federated learning, ...) adds its own figures without
touching the core report::

    from pytest_collab.report.sections import register_section

    def has_splits(results, run_info):
        return "split" in results.columns

    def split_latency(results, metrics, run_info):
        fig = ...                      # a matplotlib Figure (no pyplot needed)
        return [fig, "<p>Latency per split point.</p>"]

    register_section("Split inference", has_splits, split_latency)

- ``predicate(results_df, run_info) -> bool`` decides whether the section applies to a run;
- ``render(results_df, metrics_df, run_info) -> list`` returns items, each a matplotlib
  ``Figure`` (inlined as PNG), a :class:`pytest_collab.report.charts.Chart` (interactive:
  hover, zoom), a ``str`` of HTML (trusted, inserted as is), or a pandas ``DataFrame``
  (rendered as a table).

An experiment under ``testcases/<name>/`` registers from ``testcases/<name>/report_sections.py``:
the report imports that file for every test case of the run (looked up under the run's
rootdir, then the current folder), so ``collab report`` finds it too. Sections registered
while that file is imported belong to its experiment and follow its summary table; the
file may also declare the experiment's headline (``HEADLINE = {...}``, see
:mod:`pytest_collab.report.headline`).
An installed package registers through the entry point group
``pytest_collab.report_sections`` (the entry point names a module to import, whose
import registers). Sections appear after the built-in ones, in registration order; a
name registered twice replaces the first; a section that raises shows its error in the
report instead of failing the whole report.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_collab.errors import CollabWarning
from pytest_collab.testcase import REPORT_SECTIONS_FILE, testcase_path

ENTRY_POINT_GROUP = "pytest_collab.report_sections"
#: sections shipped in the package that register through this same API, on first use
PACKAGED_SECTIONS = ("pytest_collab.report.energy",)

Predicate = Callable[[Any, dict], bool]
Render = Callable[[Any, Any, dict], list]


@dataclass(frozen=True)
class Section:
    name: str
    predicate: Predicate
    render: Render
    testcase: str | None = None   # the experiment it belongs to (None: after every experiment)


_REGISTRY: dict[str, Section] = {}
_LOADING: list[str] = []   # the test case whose report_sections.py is being imported


def register_section(name: str, predicate: Predicate, render: Render,
                     testcase: str | None = None) -> Section:
    """Add (or replace) the report section ``name``; returns it.

    ``testcase`` defaults to the experiment whose ``report_sections.py`` is being loaded.
    """
    section = Section(name, predicate, render, testcase or (_LOADING[-1] if _LOADING else None))
    _REGISTRY.pop(name, None)
    _REGISTRY[name] = section
    return section


def unregister_section(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered_sections() -> list[Section]:
    """Experiment sections, after importing the modules named by entry points."""
    import importlib
    import importlib.metadata

    for module in PACKAGED_SECTIONS:
        importlib.import_module(module)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    return list(_REGISTRY.values())


def load_testcase_sections(testcases: "list[str] | set[str]", roots: "list[str]") -> list[str]:
    """Import ``<root>/testcases/<name>/report_sections.py`` for each test case; return the files."""
    import importlib.util

    loaded = []
    for name in sorted(testcases):
        for root in roots:
            path = testcase_path(str(name), root) / REPORT_SECTIONS_FILE
            if not path.is_file():
                continue
            module_name = f"collab_report_sections_{name}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.parent))  # it may import its test case's helpers
            _LOADING.append(str(name))
            try:
                spec.loader.exec_module(module)
                if hasattr(module, "HEADLINE"):
                    from pytest_collab.report.headline import headline_from_mapping

                    headline_from_mapping(str(name), module.HEADLINE, str(path))
            except Exception as exc:  # noqa: BLE001  (one broken file must not sink the report)
                warnings.warn(CollabWarning(f"{path}: report sections not loaded ({exc!r}); "
                                            "fix that file, the rest of the report is written"),
                              stacklevel=2)
                break
            finally:
                _LOADING.pop()
                sys.path.remove(str(path.parent))
            loaded.append(str(path))
            break
    return loaded
