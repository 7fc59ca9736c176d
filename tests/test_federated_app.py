"""pytest_collab.flower on the controller: app folders, configs, result rows, report choice.

Fast and pure (no Flower process): the end-to-end runs are in test_federated_module.py.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from pytest_collab.flower import report
from pytest_collab.flower.app import (FlowerAppError, config_args, load_app,
                                      node_config_text)
from pytest_collab.flower.result import FlowerRun, client_rows, round_rows

ROOT = Path(__file__).resolve().parents[1]
BYO = ROOT / "testcases" / "federated_bring_your_own" / "app"
SHIPPED = ROOT / "testcases" / "federated" / "app"


def test_brought_app_is_read_and_needs_no_torch() -> None:
    app = load_app(BYO)
    assert app.components["serverapp"] == "digits_sklearn.server_app:app"
    assert "num-server-rounds" in app.config
    warm = app.warm_modules()
    assert "sklearn" in warm and not any(m.startswith("torch") for m in warm)


def test_torch_is_warmed_only_for_an_app_that_depends_on_it(tmp_path: Path) -> None:
    text = (BYO / "pyproject.toml").read_text().replace('"numpy",', '"numpy",\n    "torch>=2",')
    (tmp_path / "pyproject.toml").write_text(text)
    assert "torch" in load_app(tmp_path).warm_modules()


def test_unknown_run_config_key_is_named_before_flower_sees_it() -> None:
    app = load_app(BYO)
    app.check_run_config({"num-server-rounds": 2, "penalty": "l2"})
    with pytest.raises(FlowerAppError, match=r"lr, model .*\[tool.flwr.app.config\]"):
        app.check_run_config({"lr": 0.1, "model": "cnn"})


@pytest.mark.parametrize(("text", "message"), [
    ("", "no \\[tool.flwr.app\\] table"),
    ("[tool.flwr.app]\npublisher='x'\n[tool.flwr.app.components]\nserverapp='a:b'\n",
     "lacks clientapp"),
    ("[tool.flwr.app", "not valid TOML"),
])
def test_bad_app_folders_fail_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(FlowerAppError, match=message) as info:
        load_app(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_folder_without_pyproject_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FlowerAppError, match="no pyproject.toml"):
        load_app(tmp_path)


def test_pack_ships_the_app_without_caches(tmp_path: Path) -> None:
    app_dir = tmp_path / "myapp"
    (app_dir / "pkg" / "__pycache__").mkdir(parents=True)
    (app_dir / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"0")
    (app_dir / "pkg" / "m.py").write_text("X = 1\n")
    (app_dir / "pyproject.toml").write_text((BYO / "pyproject.toml").read_text())
    with tarfile.open(load_app(app_dir).pack()) as tar:
        names = sorted(tar.getnames())
    assert names == ["myapp", "myapp/pkg", "myapp/pkg/m.py", "myapp/pyproject.toml"]


def test_config_values_use_flower_syntax() -> None:
    assert config_args({"a": 1, "b": 0.5, "c": "x y", "d": True}) == \
        ["a=1", "b=0.5", 'c="x y"', "d=true"]
    assert node_config_text({"partition-id": 0, "name": 'rpi "1"'}) == \
        'partition-id=0 name="rpi \\"1\\""'
    with pytest.raises(FlowerAppError, match="bool, int, float or str"):
        config_args({"bad": [1, 2]})


def test_round_rows_merge_flower_result_records_per_round() -> None:
    rows = [
        {"flower": "round", "round": 0, "source": "server", "metrics": {"accuracy": 0.1}, "t": 10.0},
        {"flower": "round", "round": 1, "source": "train", "metrics": {"train_loss": 2.0}, "t": 12.0},
        {"flower": "round", "round": 1, "source": "evaluate", "metrics": {"loss": 1.5}, "t": 13.0},
        {"flower": "round", "round": 1, "source": "server", "metrics": {"accuracy": 0.7}, "t": 14.0},
        {"flower": "round", "round": 2, "source": "server", "metrics": {"num-x": 3}, "t": 17.5},
        {"flower": "client", "round": 1},
    ]
    got = round_rows(rows)
    assert got[0] == {"round": 0, "server_accuracy": 0.1}
    assert got[1] == {"round": 1, "train_loss": 2.0, "eval_loss": 1.5, "server_accuracy": 0.7,
                      "round_time_s": 4.0}
    assert got[2] == {"round": 2, "server_num_x": 3, "round_time_s": 3.5}
    assert FlowerRun(status="completed", rounds=got).seconds_per_round() == 3.5


def test_client_rows_name_device_and_node_and_bytes_both_ways() -> None:
    raw = {"flower": "client", "device": "rpi-1", "node_id": 2**63 + 5, "run_id": 1,
           "phase": "train", "round": 1, "bytes_to_client": 100, "bytes_from_client": 90,
           "time_s": 0.5, "status": "ok", "metrics": {"num-examples": 7}, "heavy_modules": ""}
    [row] = client_rows([raw, {"flower": "round"}])
    assert row["client"] == "rpi-1" and row["node_id"] == str(2**63 + 5)
    assert (row["bytes_sent"], row["bytes_received"]) == (100, 90)
    assert row["train_time_s"] == 0.5 and row["num_examples"] == 7


def test_report_sections_apply_by_columns_not_testcase_name() -> None:
    pd = pytest.importorskip("pandas")
    rows = pd.DataFrame([
        {"testcase": "anything", "test": "t::a", "kind": "round", "round": 1, "server_accuracy": 0.8},
        {"testcase": "anything", "test": "t::a", "kind": "client", "round": 1, "client": "rpi-1",
         "train_time_s": 0.3, "status": "ok"},
    ])
    assert report.has_rounds(rows, {}) and report.has_client_times(rows, {})
    assert report.curve_columns(rows) == ["server_accuracy"]
    other = pd.DataFrame([{"testcase": "federated", "test": "t", "latency_ms": 3.0}])
    assert not report.has_rounds(other, {}) and not report.has_client_times(other, {})
    pytest.importorskip("matplotlib")
    assert len(report.learning_curves(rows, None, {})) == 2
    assert len(report.stragglers(rows, None, {})) == 2


@pytest.mark.parametrize("found", ["1.40.2", "1.42.0", "2.0.0"])
def test_flower_outside_the_supported_range_is_a_clear_error(monkeypatch, found: str) -> None:
    import importlib.metadata

    from pytest_collab.devicekit.flower import _launch

    monkeypatch.setattr(importlib.metadata, "version", lambda name: found)
    with pytest.raises(SystemExit) as info:
        _launch.check_flower()
    assert f"flwr {found} is installed" in str(info.value)
    assert "flwr>=1.41,<1.42" in str(info.value)


def test_the_supported_flower_passes(monkeypatch) -> None:
    import importlib.metadata

    from pytest_collab.devicekit.flower import _launch

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.41.3")
    assert _launch.check_flower() == "1.41.3"


def test_device_kit_flower_imports_nothing_heavy() -> None:
    """The launchers import flwr only inside the programs: the kit stays importable bare."""
    import subprocess
    import sys

    code = ("import sys, collab_devicekit.flower.hooks, collab_devicekit.flower.superexec, "
            "collab_devicekit.flower.run_app, collab_devicekit.flower.supernode;"
            "print(sorted(m for m in ('flwr', 'torch', 'pytest', 'pytest_collab') if m in sys.modules))")
    from pytest_collab.runtime.shipping import local_root

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(local_root())}, check=True)
    assert out.stdout.strip() == "[]"
