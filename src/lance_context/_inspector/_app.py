"""The Starlette application: configuration, routes, security headers and error pages."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lance_context import LanceContextError

from .._cli._refs import StoreSpec
from ._actions import ACTION_ROUTES
from ._pages import PAGE_ROUTES
from ._support import Inspector, for_the_page, render

__all__ = ["InspectorConfig", "create_app"]

log = logging.getLogger("lance_context.inspector")
HERE = Path(__file__).parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: No script may run, whatever a page holds; images only from this server.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer makes Chromium send "Origin: null"
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


@dataclass(frozen=True)
class InspectorConfig:
    """How the inspector runs.

    Attributes:
        spec: The store (URI, storage options, default branch).
        allow_writes: Offer tag, branch and restore (POST, CSRF-checked); read-only otherwise.
        allowed_hosts: ``Host`` header names accepted (the loopback names by default);
            ``None`` accepts any (when listening on another address on purpose).
        page_size: Rows per page of the timeline, sessions and conversations.
        csrf_token: The token every POST must carry (a fresh random one per process).
    """

    spec: StoreSpec
    allow_writes: bool = False
    allowed_hosts: Sequence[str] | None = ("127.0.0.1", "localhost", "[::1]", "::1")
    page_size: int = 25
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SecurityMiddleware:
    """Security headers on every response; refuses requests for other host names."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = _host_name(headers.get(b"host", b"").decode("latin-1").lower())
        if self.allowed is not None and host not in self.allowed:
            response = Response(
                "unknown host: open the inspector through 127.0.0.1", 400, media_type="text/plain"
            )
            await response(scope, receive, self._secure(send))
            return
        await self.app(scope, receive, self._secure(send))

    @staticmethod
    def _secure(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() not in dict(_HEADERS)],
                    *_HEADERS,
                ]
            await send(message)

        return wrapped


async def _store_error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, LookupError) else 400
    if request.method == "POST":  # a refused tag, branch or restore: say that the store is as it was
        title = "Nothing changed"
    else:
        title = "Not found" if status == 404 else "Cannot show this"
    return render(request, "error.html", {"title": title, "message": for_the_page(exc)}, status)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such page, wrong method) as pages like the others."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        title, message = "Not found", f"the inspector has no page at {request.url.path}"
    elif exc.status_code == 405 and request.url.path.startswith("/actions/"):
        title = "Method not allowed"
        message = "tag, branch and restore are forms the timeline sends with POST (under --allow-writes)"
    elif exc.status_code == 405:  # a page: the inspector only reads it
        title = "Method not allowed"
        message = f"{request.url.path} is a page to read: open it with GET"
    else:
        title, message = "Cannot show this", exc.detail
    response = render(request, "error.html", {"title": title, "message": message}, exc.status_code)
    response.headers.update(exc.headers or {})  # a 405 keeps its Allow header
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    """An unexpected error's page, with the security headers: it is sent from outside the middleware."""
    log.exception("inspector error on %s", request.url.path)
    headers = {name.decode(): value.decode() for name, value in _HEADERS}
    return HTMLResponse("<h1>Internal error</h1><p>See the server's log.</p>", 500, headers=headers)


async def _favicon(request: Request) -> Response:
    """The icon at the address browsers ask for by themselves (pages name ``/static/favicon.svg``)."""
    return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")


def create_app(config: InspectorConfig) -> Starlette:
    """The inspector's ASGI application for one store."""
    app = Starlette(
        routes=[
            *PAGE_ROUTES,
            *ACTION_ROUTES,
            Route("/favicon.ico", _favicon),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={
            LanceContextError: _store_error,
            LookupError: _store_error,
            ValueError: _store_error,
            HTTPException: _http_error,
            500: _server_error,
        },
    )
    app.state.inspector = Inspector(config.spec, config.allow_writes, config.csrf_token, config.page_size)
    app.add_middleware(SecurityMiddleware, allowed_hosts=config.allowed_hosts)  # type: ignore[arg-type]
    return app
