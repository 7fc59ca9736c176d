"""Experiment bundles: one ``.collab.tar.gz`` file that lets someone else re-run a test case.

A bundle holds the test case's code folder, its resolved configuration, the lock of what
it ran with, and the baseline run (``results.parquet`` + a ``run.json`` stripped of
addresses, users and key paths)::

    manifest.json               format version, name, sha256 + size of every other member
    config.json                 tests (params, device constraints), experiment options, kinds
    lock.json                   package versions, git commit, image/artifact digests, seeds
    tolerances.json             per-metric tolerances of the replay gate (may be {})
    baseline/run.json           the baseline's run.json, sanitized
    baseline/results.parquet    the baseline's results, byte for byte
    code/...                    the test case folder (no caches, no hidden files)

The archive is deterministic (sorted members, fixed mtime/uid/gid/mode, gzip mtime 0),
so export -> import -> export gives the same bytes: a bundle's sha256 names its content.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_collab.errors import CollabError
from pytest_collab.share.bundle_config import resolve_config, resolve_lock, sanitize_run_info
from pytest_collab.testcase import TESTCASES_DIR, is_code, testcase_path

FORMAT_VERSION = 1
SUFFIX = ".collab.tar.gz"
MTIME = 946684800  # 2000-01-01: fixed, so the archive bytes depend on content only
BASELINES = Path("reports") / "baselines"


class BundleError(CollabError):
    """A bundle can not be written, read, trusted or unpacked; the message says why and what to do."""


@dataclass
class Bundle:
    """A bundle read into memory: every member's bytes plus the parsed JSON members."""

    path: Path | None
    members: dict[str, bytes]
    manifest: dict[str, Any]
    config: dict[str, Any]
    lock: dict[str, Any]
    tolerances: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def run_info(self) -> dict[str, Any]:
        return json.loads(self.members["baseline/run.json"])

    def code_files(self) -> dict[str, bytes]:
        """Relative path inside the test case folder -> bytes."""
        return {k[len("code/"):]: v for k, v in self.members.items() if k.startswith("code/")}


def _dump(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_members(testcase_dir: Path) -> dict[str, bytes]:
    """The test case folder's files (relative posix path -> bytes), caches and dot-files left out."""
    root = Path(testcase_dir)
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not is_code(rel.parts) or not path.is_file():
            continue
        found[rel.as_posix()] = path.read_bytes()
    return found


def _executable(rel: str, testcase_dir: Path | None) -> bool:
    if testcase_dir is None:
        return False
    path = testcase_dir / rel
    return path.is_file() and bool(path.stat().st_mode & 0o111)


def write_archive(members: dict[str, bytes], out: Path, executables: "AbstractSet[str]" = frozenset()) -> Path:
    """Write ``members`` as a deterministic tar.gz (atomically: a temp name, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(members):
                info = tarfile.TarInfo(name)
                info.size = len(members[name])
                info.mtime = MTIME
                info.mode = 0o755 if name in executables else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(members[name]))
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(raw.getvalue())
    tmp.replace(out)
    return out


def build_members(testcase_dir: Path, run_dir: Path, tolerances: dict[str, Any] | None = None,
                  ) -> dict[str, bytes]:
    """Every member of the bundle of ``testcase_dir`` with the baseline ``run_dir``."""
    testcase_dir, run_dir = Path(testcase_dir), Path(run_dir)
    if not testcase_dir.is_dir():
        raise BundleError(f"{testcase_dir}: no such test case folder; pass {TESTCASES_DIR}/<name>")
    code = code_members(testcase_dir)
    if not any(PurePosixPath(p).name.startswith("test_") and p.endswith(".py") for p in code):
        raise BundleError(f"{testcase_dir}: no test_*.py file; a bundle needs the test case's tests")
    for need in ("run.json", "results.parquet"):
        if not (run_dir / need).is_file():
            raise BundleError(f"{run_dir / need}: missing; pass --run a finished run folder "
                              f"of {testcase_dir.name} (reports/<run-id>)")
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{run_dir / 'run.json'}: unreadable ({exc})") from None
    name = testcase_dir.name
    if tolerances is None and (run_dir / "tolerances.json").is_file():
        tolerances = json.loads((run_dir / "tolerances.json").read_text(encoding="utf-8"))
    clean = sanitize_run_info(info)
    config = resolve_config(name, clean)
    if not config["tests"]:
        raise BundleError(f"{run_dir}: the run has no test of test case {name!r}; "
                          f"run `pytest {TESTCASES_DIR}/{name}` and pass that run folder")
    members = {f"code/{k}": v for k, v in code.items()}
    members.update({
        "config.json": _dump(config),
        "lock.json": _dump(resolve_lock(clean, code)),
        "tolerances.json": _dump(tolerances or {}),
        "baseline/run.json": _dump(clean),
        "baseline/results.parquet": (run_dir / "results.parquet").read_bytes(),
    })
    manifest = {"format": FORMAT_VERSION, "name": name, "baseline_run": clean.get("run_id"),
                "members": {k: {"sha256": sha256(v), "size": len(v)} for k, v in sorted(members.items())}}
    members["manifest.json"] = _dump(manifest)
    return members


def export_bundle(testcase_dir: Path, run_dir: Path, out: Path,
                  tolerances: dict[str, Any] | None = None) -> Path:
    """Write the bundle of ``testcase_dir`` with the baseline ``run_dir`` to ``out``.

    ``tolerances`` (metric -> rule, see :mod:`pytest_collab.share.compare`) defaults to the
    run folder's ``tolerances.json`` (written there by an import), else none.
    """
    members = build_members(testcase_dir, run_dir, tolerances)
    executables = {f"code/{rel}" for rel in code_members(testcase_dir)
                   if _executable(rel, Path(testcase_dir))}
    return write_archive(members, out, executables)


def _load_json(members: dict[str, bytes], name: str, where: str) -> Any:
    try:
        return json.loads(members[name])
    except (KeyError, ValueError) as exc:
        raise BundleError(f"{where}: member {name} is missing or not JSON ({exc}); "
                          "the bundle is damaged: export it again") from None


def read_bundle(path: Path) -> Bundle:
    """Read and verify a bundle: format version, every checksum, the code's presence."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file")
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for info in tar:
                rel = PurePosixPath(info.name)
                if not info.isfile() or rel.is_absolute() or ".." in rel.parts:
                    raise BundleError(f"{path}: member {info.name!r} is not a plain relative file; "
                                      "refusing to unpack an unsafe archive")
                members[info.name] = tar.extractfile(info).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError(f"{path}: not a readable bundle (corrupt or truncated: {exc}); "
                          "download or export it again") from None
    manifest = _load_json(members, "manifest.json", str(path))
    version = manifest.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {version!r} is newer than this pytest-collab reads "
                          f"(format {FORMAT_VERSION}); upgrade pytest-collab")
    listed = manifest.get("members", {})
    for name, entry in sorted(listed.items()):
        if name not in members:
            what = "its code" if name.startswith("code/") else "a member"
            raise BundleError(f"{path}: {what} {name} is listed in manifest.json but missing; "
                              "the bundle is incomplete: export it again")
        if sha256(members[name]) != entry.get("sha256"):
            raise BundleError(f"{path}: checksum mismatch for {name} (manifest {entry.get('sha256')}, "
                              f"content {sha256(members[name])}); the bundle was altered or damaged")
    extra = sorted(set(members) - set(listed) - {"manifest.json"})
    if extra:
        raise BundleError(f"{path}: members not in manifest.json: {', '.join(extra)}; "
                          "the bundle was altered: export it again")
    if not any(k.startswith("code/") for k in members):
        raise BundleError(f"{path}: the bundle holds no code (no code/ member); "
                          "export it again from the test case folder")
    return Bundle(path, members, manifest, _load_json(members, "config.json", str(path)),
                  _load_json(members, "lock.json", str(path)),
                  _load_json(members, "tolerances.json", str(path)))


@dataclass
class Imported:
    """Where an import put things."""

    bundle: Bundle
    testcase_dir: Path
    baseline_dir: Path
    code_written: bool


def _differences(target: Path, files: dict[str, bytes]) -> list[str]:
    present = code_members(target)
    changed = [p for p in sorted(set(files) | set(present)) if files.get(p) != present.get(p)]
    return changed


def import_bundle(path: Path, rootdir: Path, name: str | None = None, force: bool = False) -> Imported:
    """Unpack the code into ``<rootdir>/testcases/<name>/`` and the baseline into
    ``<rootdir>/reports/baselines/<name>-<run-id>/``.

    Identical code already in place is left alone; different code is refused unless
    ``force`` (the folder is replaced) or another ``name`` is given.
    """
    bundle = read_bundle(path)
    name = name or bundle.name
    target = testcase_path(name, rootdir)
    files = bundle.code_files()
    written = False
    if target.exists():
        changed = _differences(target, files)
        if changed and not force:
            shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
            raise BundleError(
                f"{target} exists with different code ({len(changed)} file(s) differ: {shown}); "
                f"import under another name (`collab bundle import {path} --as {name}-2`, or "
                f"--collab-replay-as for pytest), or replace it with --force")
        if changed:
            shutil.rmtree(target)
    if not target.exists():
        for rel, data in files.items():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        written = True
    baseline = Path(rootdir) / BASELINES / f"{name}-{bundle.manifest.get('baseline_run')}"
    baseline.mkdir(parents=True, exist_ok=True)
    (baseline / "run.json").write_bytes(bundle.members["baseline/run.json"])
    (baseline / "results.parquet").write_bytes(bundle.members["baseline/results.parquet"])
    (baseline / "tolerances.json").write_bytes(bundle.members["tolerances.json"])
    return Imported(bundle, target, baseline, written)


def describe(bundle: Bundle) -> list[str]:
    """What a bundle holds, for ``collab bundle show`` / ``import``."""
    cfg, lock = bundle.config, bundle.lock
    info = bundle.run_info
    lines = [f"bundle {bundle.path} (format {bundle.manifest.get('format')}): test case {bundle.name!r}",
             f"  baseline run {bundle.manifest.get('baseline_run')} on {cfg.get('lab', {}).get('describe')}",
             f"  code: {len(bundle.code_files())} file(s), sha256 {lock.get('code_sha256', '?')[:16]}"]
    for nodeid, test in cfg.get("tests", {}).items():
        devices = ", ".join(f"{k}={v}" for k, v in test.get("devices", {}).items()) or "none"
        params = ", ".join(f"{k}={v!r}" for k, v in test.get("params", {}).items())
        lines.append(f"  test {nodeid}: params {params or '-'}; devices {devices}")
    if cfg.get("options"):
        lines.append("  options: " + " ".join(f"{k}={v}" for k, v in cfg["options"].items()))
    git = lock.get("git") or {}
    lines.append(f"  git {git.get('commit', 'unknown')}{' (dirty)' if git.get('dirty') else ''}; "
                 + ", ".join(f"{k} {v}" for k, v in sorted((lock.get("versions") or {}).items())
                             if k != "platform"))
    for key in ("images", "artifacts", "seeds"):
        if lock.get(key):
            lines.append(f"  {key}: {json.dumps(lock[key], sort_keys=True)}")
    rows = info.get("tests", {})
    lines.append(f"  baseline: {len(rows)} test(s), results.parquet "
                 f"{len(bundle.members['baseline/results.parquet'])} bytes")
    lines.append(f"  tolerances: {json.dumps(bundle.tolerances, sort_keys=True) if bundle.tolerances else 'defaults'}")
    return lines
