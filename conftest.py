"""Root conftest: registers the options of every experiment under testcases/.

pytest reads ``pytest_addoption`` only from conftest files it loads before parsing the
command line, so ``pytest testcases`` would miss options declared deeper down. Each
experiment keeps its options in ``testcases/<name>/options.py``; they are loaded here.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from pytest_collab.testcase import options_files


def _experiment_options():
    for path in options_files(Path(__file__).parent):
        spec = importlib.util.spec_from_file_location(f"collab_options_{path.parent.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def pytest_addoption(parser):
    for module in _experiment_options():
        module.pytest_addoption(parser)
