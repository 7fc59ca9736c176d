"""Who may change things: a token printed at start-up, and loopback unless told otherwise.

Reading is open on loopback (the user at this machine). Every action that changes
something (ensure, refresh, delete, tag, check, render) needs the token in an
``Authorization: Bearer`` header or a ``token`` form field; a cookie never counts, so
another site can not trigger an action through the user's browser. Bound to another
address (``--allow-remote``), reading needs the token too: header, ``?token=`` or the
same-site cookie set when a page was opened with ``?token=``.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pytest_collab.errors import CollabError

COOKIE = "collab_dashboard"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool, token: str | None) -> None:
    """Refuse a non-loopback address without ``--allow-remote`` and a token."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise CollabError(f"--host {host} is not a loopback address: anyone who reaches it could "
                          "see the lab; pass --allow-remote to mean it (the token is then needed "
                          "for every page)")
    if not token:
        raise CollabError("--allow-remote needs a token (leave --token out to get a new one)")


def _same(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), token.encode())


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def form_fields(body: bytes) -> dict[str, str]:
    """An url-encoded form body (a plain HTML form), without needing python-multipart."""
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def _form_token(request: Request) -> str | None:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    return form_fields(await request.body()).get("token")


def refused(status: int, why: str) -> JSONResponse:
    return JSONResponse({"error": why}, status_code=status)


class TokenGuard:
    """ASGI-level check run before every route (see the module docstring)."""

    def __init__(self, token: str, remote: bool) -> None:
        self.token = token
        self.remote = remote

    async def __call__(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if request.method in MUTATING:
            given = _bearer(request) or await _form_token(request)
            if not given:
                return refused(401, f"{request.method} {path} changes something: send the token "
                                    "printed at start-up (Authorization: Bearer TOKEN)")
            if not _same(given, self.token):
                return refused(403, "wrong token; use the one `collab dashboard` printed")
            return await call_next(request)
        if not self.remote or path.startswith("/static/"):
            return await call_next(request)
        query = request.query_params.get("token")
        if _same(_bearer(request), self.token) or _same(request.cookies.get(COOKIE), self.token):
            return await call_next(request)
        if _same(query, self.token):
            response = await call_next(request)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        return refused(401, "this dashboard listens on a network address: open the URL with "
                            "?token=... that `collab dashboard` printed")
