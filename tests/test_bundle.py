"""Bundles: byte-for-byte round trip, no secrets, and a clear error for every broken bundle."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bundle_helpers import ROOT, SECRET_ADDRESS, SECRET_KEY, SECRET_USER, tiny_project, write_run
from pytest_collab.share.bundle import (BundleError, build_members, export_bundle, import_bundle, read_bundle,
                                  sha256, write_archive)
from pytest_collab.cli import main


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    case = tiny_project(tmp_path / "src")
    (case / "__pycache__").mkdir()
    (case / "__pycache__" / "x.pyc").write_bytes(b"junk")
    run = write_run(tmp_path / "run", [
        {"test": "test_tiny[1]", "params": {"n": 1}, "accuracy": 0.89, "latency_ms": [1.0, 2.0, 3.0]},
        {"test": "test_tiny[2]", "params": {"n": 2}, "accuracy": 0.88, "latency_ms": [2.0, 3.0, 4.0]},
    ])
    tolerances = {"accuracy": {"absolute": 0.001}}
    return export_bundle(case, run, tmp_path / "tiny.collab.tar.gz", tolerances), case


def test_export_import_export_is_byte_for_byte(exported: tuple[Path, Path], tmp_path: Path) -> None:
    first, case = exported
    done = import_bundle(first, tmp_path / "elsewhere")
    assert sorted(p.name for p in done.testcase_dir.iterdir()) == ["prog.py", "test_tiny.py"]
    assert (done.testcase_dir / "prog.py").read_bytes() == (case / "prog.py").read_bytes()
    again = export_bundle(done.testcase_dir, done.baseline_dir, tmp_path / "again.collab.tar.gz")
    assert again.read_bytes() == first.read_bytes()
    with gzip.open(first) as gz:  # gzip header mtime 0, no file name in it
        gz.read(1)
    assert first.read_bytes()[4:8] == b"\0\0\0\0"


def test_bundle_holds_config_lock_baseline_and_no_secrets(exported: tuple[Path, Path]) -> None:
    path, _ = exported
    bundle = read_bundle(path)
    blob = b"".join(bundle.members.values())
    for secret in (SECRET_ADDRESS, SECRET_USER, SECRET_KEY, "/home/alice-secret"):
        assert secret.encode() not in blob, secret
    tests = bundle.config["tests"]
    assert tests["testcases/tiny/test_tiny.py::test_tiny[2]"]["params"] == {"n": 2}
    assert tests["testcases/tiny/test_tiny.py::test_tiny[2]"]["devices"] == {"rpi": 1}
    assert bundle.config["kinds"]["rpi"]["count"] == 1
    assert bundle.config["lab"]["class"] == "ssh"
    assert bundle.lock["git"]["commit"] == "0" * 40
    assert bundle.lock["images"] == {"tiny-runtime": "sha256:" + "ab" * 32}
    assert bundle.tolerances == {"accuracy": {"absolute": 0.001}}
    assert not any("__pycache__" in name for name in bundle.members)
    for name, entry in bundle.manifest["members"].items():
        assert sha256(bundle.members[name]) == entry["sha256"]


def _rewrite(path: Path, change) -> Path:
    members = dict(read_bundle(path).members)
    change(members)
    return write_archive(members, path.with_name("broken.collab.tar.gz"))


def test_truncated_bundle_is_corrupt(exported: tuple[Path, Path]) -> None:
    path, _ = exported
    broken = path.with_name("cut.collab.tar.gz")
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(BundleError, match="corrupt or truncated"):
        read_bundle(broken)


def test_newer_format_is_refused(exported: tuple[Path, Path]) -> None:
    def newer(members: dict) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["format"] = 99
        members["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match="format 99 is newer.*upgrade pytest-collab"):
        read_bundle(_rewrite(exported[0], newer))


def test_checksum_mismatch_names_the_member(exported: tuple[Path, Path]) -> None:
    def tamper(members: dict) -> None:
        members["code/prog.py"] += b"\nprint('evil')\n"
    with pytest.raises(BundleError, match="checksum mismatch for code/prog.py"):
        read_bundle(_rewrite(exported[0], tamper))


def test_missing_code_is_named(exported: tuple[Path, Path]) -> None:
    def drop(members: dict) -> None:
        del members["code/test_tiny.py"]
    with pytest.raises(BundleError, match="its code code/test_tiny.py is listed in manifest.json but missing"):
        read_bundle(_rewrite(exported[0], drop))

    def drop_all(members: dict) -> None:
        manifest = json.loads(members["manifest.json"])
        for name in [n for n in members if n.startswith("code/")]:
            del members[name]
            del manifest["members"][name]
        members["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match="holds no code"):
        read_bundle(_rewrite(exported[0], drop_all))


def test_import_refuses_different_code_and_says_how(exported: tuple[Path, Path], tmp_path: Path) -> None:
    path, _ = exported
    root = tmp_path / "proj"
    done = import_bundle(path, root)
    assert done.code_written
    assert not import_bundle(path, root).code_written  # identical: left alone
    (done.testcase_dir / "prog.py").write_text("print('mine')\n")
    with pytest.raises(BundleError, match=r"different code .*prog.py.*--as tiny-2.*--force"):
        import_bundle(path, root)
    assert import_bundle(path, root, name="tiny-2").testcase_dir == root / "testcases" / "tiny-2"
    import_bundle(path, root, force=True)
    assert "mine" not in (done.testcase_dir / "prog.py").read_text()


def test_export_without_results_says_what_to_pass(tmp_path: Path) -> None:
    case = tiny_project(tmp_path / "src")
    with pytest.raises(BundleError, match="run.json: missing; pass --run a finished run folder"):
        build_members(case, tmp_path)


def test_shipped_bundle_verifies_and_cli_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = sorted((ROOT / "bundles").glob("*.collab.tar.gz"))
    assert shipped
    assert main(["bundle", "show", str(shipped[0])]) == 0
    out = capsys.readouterr().out
    assert "test case 'link_baseline'" in out and "--link-sizes=" in out and "profile emulated" in out


def test_cli_export_and_import(exported: tuple[Path, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path, case = exported
    out = tmp_path / "cli.collab.tar.gz"
    assert main(["bundle", "export", str(case), "--run", str(tmp_path / "run"), "-o", str(out)]) == 0
    assert main(["bundle", "import", str(out), "--root", str(tmp_path / "r2")]) == 0
    text = capsys.readouterr().out
    assert "test_tiny[1]" in text and "(written)" in text
    assert main(["bundle", "show", str(tmp_path / "nope.tar.gz")]) == 2
    assert "no such bundle file" in capsys.readouterr().err


OPTIONS_PY = '''
def pytest_addoption(parser):
    g = parser.getgroup("tiny", "tiny experiment")
    g.addoption("--tiny-scale", default="1", help="scale (default 1)")
    g.addoption("--tiny-mode", default="a", help="mode (default a)")
'''
RECORDS_OPTIONS = '''
import pytest


@pytest.mark.devices(rpi=1)
def test_tiny(collab, collab_options):
    collab.record(scale=collab_options["tiny_scale"], mode=collab_options["tiny_mode"],
                  hz=collab_options["hz"], lan=collab_options.lan.name)
'''


def test_bundle_and_replay_use_options_set_through_addopts_env_and_ini(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd
    from bundle_helpers import run_pytest

    from pytest_collab.share.replay import prepare_replay

    case = tiny_project(tmp_path / "src")
    (case / "options.py").write_text(OPTIONS_PY)
    (case / "test_tiny.py").write_text(RECORDS_OPTIONS)
    (tmp_path / "src" / "pytest.ini").write_text("[pytest]\naddopts = --tiny-mode=b\ncollab_hz = 5\n")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--tiny-scale=3")
    run = run_pytest(tmp_path / "src", tmp_path / "src" / "reports", "testcases/tiny")
    rows = pd.read_parquet(run / "results.parquet")
    assert list(rows["scale"]) == ["3"] and list(rows["mode"]) == ["b"] and list(rows["hz"]) == [5.0]
    info = json.loads((run / "run.json").read_text())
    assert info["options"]["tiny"] == {"--tiny-mode": "b", "--tiny-scale": "3"}
    assert info["settings"]["hz"] == 5.0

    bundle = read_bundle(export_bundle(case, run, tmp_path / "tiny.collab.tar.gz"))
    assert bundle.config["options"] == {"--tiny-mode": "b", "--tiny-scale": "3"}

    monkeypatch.delenv("PYTEST_ADDOPTS")   # the colleague's machine: none of those settings
    root = tmp_path / "colleague"
    root.mkdir()
    plan = prepare_replay(tmp_path / "tiny.collab.tar.gz", root)
    assert plan.option_args == ["--tiny-mode=b", "--tiny-scale=3"]
    (root / "conftest.py").write_text((tmp_path / "src" / "conftest.py").read_text())
    again = run_pytest(root, root / "reports", *plan.args)
    replayed = pd.read_parquet(again / "results.parquet")
    assert list(replayed["scale"]) == ["3"] and list(replayed["mode"]) == ["b"]
