"""The dashboard's Starlette app: four pages and the JSON API under ``/api`` they use.

Pages are thin HTML shells (``templates/``) filled by vanilla JS (``static/``) from the
API, so a script gets everything a page shows. A page first checks on the server what
it depends on (the profile loads, the run folder is one) and shows an error page naming
the file and the problem instead; nothing ever answers with a traceback.
"""
from __future__ import annotations

import asyncio
import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pytest_collab.containers.registry import DEFAULT_PORT
from pytest_collab.dashboard import lab, registry_view, runs
from pytest_collab.dashboard.auth import TokenGuard, form_fields
from pytest_collab.dashboard.jobs import Jobs
from pytest_collab.dashboard.live import LiveMonitor, log_tail
from pytest_collab.errors import CollabError, RunDataError
from pytest_collab.testcase import testcase_path

HERE = Path(__file__).parent
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
STREAM_EVERY_S = 0.5


@dataclass
class Settings:
    """What ``collab dashboard`` was started with."""

    root: Path
    reports: Path
    lan: str = "local"
    registry: str = f"127.0.0.1:{DEFAULT_PORT}"
    token: str = ""
    remote: bool = False
    allowed_hosts: list[str] = field(default_factory=lambda: list(LOOPBACK_NAMES))


class Dashboard:
    """The app's state: settings, what the Lab page learned, jobs, the live monitor."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lab = lab.LabState()
        self.jobs = Jobs()
        self.live = LiveMonitor(settings.reports)
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html"]))

    # ------------------------------------------------------------ pages
    def page(self, name: str, title: str, status: int = 200, **context: Any) -> HTMLResponse:
        text = self.templates.get_template(f"{name}.html").render(title=title, page=name, **context)
        return HTMLResponse(text, status_code=status)

    def error_page(self, message: str, status: int = 400) -> HTMLResponse:
        return self.page("error", "Error", status=status, message=message)

    async def lab_page(self, request: Request) -> Response:
        name = request.path_params.get("profile") or self.settings.lan
        try:
            await run_in_threadpool(lab.load, self.settings.root, name)
        except CollabError as exc:
            return self.error_page(f"LAN profile {name!r}: {exc}")
        return self.page("lab", f"Lab: {name}", profile=name,
                         profiles=lab.profile_names(self.settings.root))

    async def registry_page(self, request: Request) -> Response:
        return self.page("registry", "Registry", registry=self.settings.registry)

    async def runs_page(self, request: Request) -> Response:
        return self.page("runs", "Runs", reports=str(self.settings.reports))

    async def live_page(self, request: Request) -> Response:
        return self.page("live", "Live", reports=str(self.settings.reports))

    async def report_page(self, request: Request) -> Response:
        name = request.path_params["run"]
        try:
            run = runs.run_folder(self.settings.reports, name)
            run.read_run_json()
        except CollabError as exc:
            return self.error_page(str(exc), 404 if "no such" in str(exc) else 400)
        if run.report_html.is_file():
            return FileResponse(run.report_html, media_type="text/html")
        return self.page("noreport", f"Run {name}", run=name, path=str(run.report_html))

    async def compare_page(self, request: Request) -> Response:
        names = request.query_params.getlist("run")
        try:
            body = await run_in_threadpool(runs.compare_html, self.settings.reports, names)
        except CollabError as exc:
            return self.error_page(f"compare {', '.join(names) or '(no runs)'}: {exc}")
        return self.page("compare", f"Compare {len(names)} runs", body=body, names=names)

    # ------------------------------------------------------------ lab API
    async def api_profiles(self, request: Request) -> Response:
        return JSONResponse({"default": self.settings.lan, "profiles": lab.profile_names(self.settings.root)})

    async def api_lan(self, request: Request) -> Response:
        lan_obj = await run_in_threadpool(lab.load, self.settings.root, request.path_params["profile"])
        return JSONResponse(await run_in_threadpool(self.lab.view, lan_obj))

    async def _devices_from(self, request: Request) -> tuple[Any, list[Any], dict[str, Any]]:
        body = await _json_body(request)
        lan_obj = await run_in_threadpool(lab.load, self.settings.root, request.path_params["profile"])
        return lan_obj, lab.pick(lan_obj, body.get("devices")), body

    async def api_check(self, request: Request) -> Response:
        lan_obj, devices, body = await self._devices_from(request)
        timeout = float(body.get("timeout") or 20)
        return JSONResponse({"profile": lan_obj.name,
                             "health": await run_in_threadpool(self.lab.check, lan_obj, devices, timeout)})

    async def api_facts(self, request: Request) -> Response:
        lan_obj, devices, body = await self._devices_from(request)
        timeout = float(body.get("timeout") or 60)
        return JSONResponse(await run_in_threadpool(self.lab.refresh_facts, lan_obj, devices, timeout))

    # ------------------------------------------------------------ registry API
    async def api_registry(self, request: Request) -> Response:
        data = await run_in_threadpool(registry_view.listing, self.settings.registry)
        query = {k: request.query_params.get(k) or None for k in ("task", "arch", "model")}
        if any(query.values()):
            data["matches"] = registry_view.lookup(data["rows"], **query)
            if query["task"] and query["model"] and query["arch"]:
                data["advice"] = registry_view.advice(data["url"], query["task"], query["model"],
                                                      query["arch"], bool(data["matches"]))
        return JSONResponse(data)

    async def api_ensure(self, request: Request) -> Response:
        from pytest_collab.containers.registry import Ref, ensure

        body = await _json_body(request)
        ref = str(body.get("ref") or "").strip()
        if not ref:
            raise CollabError("ensure needs a ref: <task>/<model>:<arch>")
        parsed = Ref.parse(ref)
        build = body.get("build")
        folder = (self.settings.root / build).resolve() if build else None
        if folder is not None and not folder.is_dir():
            raise CollabError(f"build folder {folder} does not exist (give a test case folder, "
                              f"e.g. {testcase_path('split_resnet')})")
        registry = None if parsed.registry else self.settings.registry

        def work(progress: Any) -> dict[str, Any]:
            done = ensure(ref, build=folder, registry=registry, arch=body.get("arch") or None,
                          progress=progress)
            progress(f"[registry] {done.ref} {done.how} ({done.image_id})")
            return {"ref": done.ref, "how": done.how, "image_id": done.image_id}

        job = self.jobs.start(f"ensure {ref}", work)
        return JSONResponse(job.view(), status_code=202)

    async def api_job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, f"no job {request.path_params['job']!r} (jobs are kept in memory)")
        return JSONResponse(job.view(int(request.query_params.get("since") or 0)))

    # ------------------------------------------------------------ runs API
    async def api_runs(self, request: Request) -> Response:
        rows = await run_in_threadpool(runs.list_runs, self.settings.reports, self.live.alive)
        return JSONResponse({"reports": str(self.settings.reports), "runs": rows})

    async def api_run(self, request: Request) -> Response:
        run = runs.run_folder(self.settings.reports, request.path_params["run"])
        return JSONResponse(runs.summarize(run, self.live.alive))

    async def api_tag(self, request: Request) -> Response:
        body = await _json_body(request)
        tags = await run_in_threadpool(runs.set_tag, self.settings.reports, request.path_params["run"],
                                       str(body.get("tag") or ""), bool(body.get("remove")))
        return JSONResponse({"run": request.path_params["run"], "tags": tags})

    async def api_delete(self, request: Request) -> Response:
        gone = await run_in_threadpool(runs.delete_run, self.settings.reports, request.path_params["run"],
                                       self.live.alive)
        return JSONResponse({"deleted": gone})

    async def api_render(self, request: Request) -> Response:
        path = await run_in_threadpool(runs.render_report, self.settings.reports, request.path_params["run"])
        return JSONResponse({"report": str(path)})

    async def api_compare(self, request: Request) -> Response:
        names = request.query_params.getlist("run")
        return JSONResponse(await run_in_threadpool(runs.compare_summary, self.settings.reports, names))

    # ------------------------------------------------------------ live API
    async def api_live(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.live.snapshot))

    async def api_live_stream(self, request: Request) -> Response:
        """Server-Sent Events: a snapshot every half second while the page is open."""
        async def events() -> Any:
            while not await request.is_disconnected():
                snap = await run_in_threadpool(self.live.snapshot)
                yield f"data: {json.dumps(snap)}\n\n"
                await asyncio.sleep(STREAM_EVERY_S)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def api_live_log(self, request: Request) -> Response:
        q = request.query_params
        lines = await run_in_threadpool(log_tail, self.settings.reports, q.get("run", ""), q.get("path", ""),
                                        min(int(q.get("lines") or 200), 2000))
        return JSONResponse({"lines": lines})

    # ------------------------------------------------------------ errors
    async def on_error(self, request: Request, exc: Exception) -> Response:
        """Every failure as a message: JSON under /api, an error page elsewhere."""
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        elif isinstance(exc, RunDataError) and "no such" in str(exc):
            status, message = 404, str(exc)
        elif isinstance(exc, (CollabError, ValueError)):
            status, message = 400, str(exc)
        else:
            traceback.print_exception(exc, file=sys.stderr)
            status, message = 500, f"internal error: {type(exc).__name__}: {exc} (details in the server's log)"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return self.error_page(message, status)


async def _json_body(request: Request) -> dict[str, Any]:
    """A JSON object body, or a form's fields (a plain HTML form carries the token as one)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {k: v for k, v in form_fields(raw).items() if k != "token"}
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CollabError(f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CollabError("request body must be a JSON object")
    return data


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for ``settings`` (``collab dashboard`` serves it with uvicorn)."""
    d = Dashboard(settings)
    routes = [
        Route("/", lambda request: RedirectResponse(f"/lab?{request.url.query}".rstrip("?"), status_code=303)),
        Route("/lab", d.lab_page), Route("/lab/{profile}", d.lab_page),
        Route("/registry", d.registry_page), Route("/runs", d.runs_page), Route("/live", d.live_page),
        Route("/runs/{run}/report", d.report_page), Route("/compare", d.compare_page),
        Route("/api/lan", d.api_profiles), Route("/api/lan/{profile}", d.api_lan),
        Route("/api/lan/{profile}/check", d.api_check, methods=["POST"]),
        Route("/api/lan/{profile}/facts", d.api_facts, methods=["POST"]),
        Route("/api/registry", d.api_registry),
        Route("/api/registry/ensure", d.api_ensure, methods=["POST"]),
        Route("/api/jobs/{job}", d.api_job),
        Route("/api/runs", d.api_runs), Route("/api/runs/{run}", d.api_run), Route("/api/compare", d.api_compare),
        Route("/api/runs/{run}", d.api_delete, methods=["DELETE"]),
        Route("/api/runs/{run}/delete", d.api_delete, methods=["POST"]),
        Route("/api/runs/{run}/tag", d.api_tag, methods=["POST"]),
        Route("/api/runs/{run}/report", d.api_render, methods=["POST"]),
        Route("/api/live", d.api_live), Route("/api/live/stream", d.api_live_stream),
        Route("/api/live/log", d.api_live_log),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts),
        Middleware(BaseHTTPMiddleware, dispatch=TokenGuard(settings.token, settings.remote)),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={Exception: d.on_error, HTTPException: d.on_error,
                                        CollabError: d.on_error, ValueError: d.on_error})
    app.state.dashboard = d
    return app
