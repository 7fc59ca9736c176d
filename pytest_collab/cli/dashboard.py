"""``collab dashboard``: the lab, the registry, the runs and live experiments in a browser."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pytest_collab.cli import add_reports_dir, add_root
from pytest_collab.errors import CollabError

DEFAULT_PORT = 8765


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C; print the URL with the token actions need."""
    try:
        import uvicorn

        from pytest_collab.dashboard.app import LOOPBACK_NAMES, Settings, create_app
        from pytest_collab.dashboard.auth import check_bind, is_loopback, new_token
    except ModuleNotFoundError as exc:
        raise CollabError(f"the dashboard needs {exc.name}: pip install 'pytest-collab[dashboard]'") from None
    token = args.token if args.token is not None else new_token()
    if len(token) < 8:
        raise CollabError("--token (or PYTEST_COLLAB_DASHBOARD_TOKEN) must have 8 characters or more")
    check_bind(args.host, args.allow_remote, token)
    remote = not is_loopback(args.host)
    root = Path(args.root).resolve()
    reports = args.reports_dir if args.reports_dir.is_absolute() else root / args.reports_dir
    settings = Settings(root=root, reports=reports, lan=args.lan, registry=args.registry, token=token,
                        remote=remote, allowed_hosts=["*"] if remote else list(LOOPBACK_NAMES))
    app = create_app(settings)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"collab dashboard: http://{shown}:{args.port}/?token={token}", flush=True)
    print(f"  lab {args.lan} · reports {reports} · registry {args.registry}"
          + (" · REMOTE: every page needs the token" if remote else "")
          + "; Ctrl-C stops it", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=2)
    return 0


def register(subparsers: Any) -> None:
    from pytest_collab.cli.registry import DEFAULT_REGISTRY

    p = subparsers.add_parser("dashboard", help="web dashboard: lab, registry, runs, live metrics",
                              description=cmd_dashboard.__doc__)
    p.add_argument("--lan", default=os.environ.get("PYTEST_COLLAB_LAN", "local"),
                   help="profile the Lab page opens with (default: local)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind; a non-loopback one needs --allow-remote (default: 127.0.0.1)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host; every page then needs the token")
    add_root(p)
    add_reports_dir(p)
    p.add_argument("--registry", default=os.environ.get("PYTEST_COLLAB_REGISTRY", DEFAULT_REGISTRY),
                   help=f"registry host:port; env PYTEST_COLLAB_REGISTRY (default: {DEFAULT_REGISTRY})")
    p.add_argument("--token", default=os.environ.get("PYTEST_COLLAB_DASHBOARD_TOKEN"),
                   help="token for actions; env PYTEST_COLLAB_DASHBOARD_TOKEN (default: a new random one)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default: warning)")
    p.set_defaults(func=cmd_dashboard)
