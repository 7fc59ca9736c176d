"""``collab bundle export|import|show|replay``: share an experiment and re-run it elsewhere.

``collab bundle replay`` is the ``pytest --collab-replay`` flow as a command: it runs
pytest in a child process (so it works from CI scripts and before any plugin wiring)
and exits 1 on a regression.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_collab.cli import add_root
from pytest_collab.errors import CollabError
from pytest_collab.results.rundir import DEFAULT_OUT_DIR, resolve_run_dir
from pytest_collab.testcase import TESTCASES_DIR, testcase_path


def _tolerances(path: Path | None) -> dict[str, Any] | None:
    """Read a tolerances mapping from JSON or YAML (metric -> rule)."""
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
        if Path(path).suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CollabError(f"{path}: can not read tolerances ({exc})") from None
    if not isinstance(data, dict):
        raise CollabError(f"{path}: tolerances must be a mapping of metric -> rule")
    return data


def cmd_export(args: argparse.Namespace) -> int:
    """Write a bundle of a test case with a finished run as its baseline."""
    from pytest_collab.share.bundle import SUFFIX, export_bundle

    run = resolve_run_dir(args.run, args.reports_dir)
    out = args.output or Path(f"{Path(args.testcase).resolve().name}{SUFFIX}")
    print(export_bundle(Path(args.testcase), run.root, out, _tolerances(args.tolerances)))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Unpack a bundle's code into testcases/ and its baseline under reports/baselines/."""
    from pytest_collab.share.bundle import describe, import_bundle

    done = import_bundle(Path(args.file), args.root, name=args.name, force=args.force)
    print("\n".join(describe(done.bundle)))
    state = "written" if done.code_written else "already there, identical"
    print(f"code: {done.testcase_dir} ({state})\nbaseline: {done.baseline_dir}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Verify a bundle and print what it holds."""
    from pytest_collab.share.bundle import describe, read_bundle

    print("\n".join(describe(read_bundle(Path(args.file)))))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-run a bundle with pytest on --lan and compare with its baseline; 1 on regression."""
    from pytest_collab.share.replay import finish_replay, prepare_replay, replay_lines

    root = Path(args.root).resolve()
    plan = prepare_replay(Path(args.file).resolve(), root, name=args.name, force=args.force)
    out = Path(tempfile.mkdtemp(prefix="collab-replay-")) if args.out is None else Path(args.out).resolve()
    argv = [sys.executable, "-m", "pytest", *plan.args, f"--lan={args.lan}", f"--collab-out={out}",
            "-p", "no:cacheprovider", *shlex.split(args.pytest_args)]
    print("collab replay: " + " ".join(argv[2:]), flush=True)
    code = subprocess.run(argv, cwd=root, check=False).returncode
    latest = out / "latest"
    if not (latest / "results.parquet").is_file():
        print(f"collab replay: pytest exited {code} without a finished run in {out}", file=sys.stderr)
        return code or 1
    outcome = finish_replay(plan, latest.resolve())
    print("\n".join(replay_lines(outcome)))
    return 0 if outcome.passed and code == 0 else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bundle`` (export, import, show, replay) to the ``collab`` parser."""
    bundle = subparsers.add_parser("bundle", help="share experiments: export, import, show, replay bundles")
    sub = bundle.add_subparsers(title="bundle commands", metavar="COMMAND")

    export = sub.add_parser("export", help=cmd_export.__doc__, description=cmd_export.__doc__)
    export.add_argument("testcase", metavar="TESTCASE_DIR",
                        help=f"the test case folder, e.g. {testcase_path('link_baseline')}")
    export.add_argument("--run", required=True, metavar="RUN_DIR",
                        help="the baseline run: a run folder, a run id under --reports-dir, or 'latest'")
    export.add_argument("--reports-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"where run ids and 'latest' are looked up (default: {DEFAULT_OUT_DIR})")
    export.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="bundle file (default: <testcase>.collab.tar.gz)")
    export.add_argument("--tolerances", type=Path, default=None, metavar="FILE",
                        help="JSON/YAML metric -> rule stored in the bundle "
                             "(default: the run's tolerances.json, else built-ins)")
    export.set_defaults(func=cmd_export)

    for name, func in (("import", cmd_import), ("replay", cmd_replay)):
        p = sub.add_parser(name, help=func.__doc__, description=func.__doc__)
        p.add_argument("file", metavar="FILE")
        add_root(p, f"project root holding {TESTCASES_DIR}/")
        p.add_argument("--as", dest="name", default=None, metavar="NAME",
                       help=f"import under {TESTCASES_DIR}/NAME instead of the bundle's name")
        p.add_argument("--force", action="store_true", help=f"replace different code already in {TESTCASES_DIR}/")
        p.set_defaults(func=func)
        if name == "replay":
            p.add_argument("--lan", default="local", help="LAN profile to replay on (default: local)")
            p.add_argument("--out", default=None, help="folder for the replay's run (default: a temp folder)")
            p.add_argument("--pytest-args", default="", metavar="ARGS",
                           help='more pytest arguments, one string: --pytest-args="-q -x"')

    show = sub.add_parser("show", help=cmd_show.__doc__, description=cmd_show.__doc__)
    show.add_argument("file", metavar="FILE")
    show.set_defaults(func=cmd_show)
