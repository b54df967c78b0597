"""The inspector's writes (POST): tag, branch and restore, only with ``--allow-writes``.

Each form carries the process's CSRF token; a POST without it, with another one, or
from another origin is refused before anything is opened for writing. A page on
another site cannot read the token (the same-origin policy), so it cannot forge one.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lance_context import InvalidFilterError

from .._cli._refs import StoreSpec, name_problem
from ._support import inspector_of, render, url

__all__ = ["ACTION_ROUTES"]

_MAX_FORM = 16 * 1024


def _refuse(request: Request, message: str) -> Response:
    return render(request, "error.html", {"title": "Refused", "message": message}, 403)


async def _form(request: Request) -> dict[str, str] | Response:
    """The posted form, or the refusal to send when writes are off or the token is wrong."""
    inspector = inspector_of(request)
    if not inspector.allow_writes:
        return _refuse(
            request, "this inspector is read-only; start it with --allow-writes to tag, branch or restore"
        )
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return _refuse(request, "cross-origin request refused")
    body = await request.body()
    if len(body) > _MAX_FORM:
        return _refuse(request, "form too large")
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not hmac.compare_digest(form.get("csrf", "").encode(), inspector.csrf_token.encode()):
        return _refuse(request, "missing or wrong CSRF token: reload the page and try again")
    return form


def _spec(request: Request, branch: str) -> StoreSpec:
    return inspector_of(request).spec.on(branch)


def _version(form: dict[str, str]) -> int:
    text = form.get("version", "")
    if not text.isdigit():
        raise ValueError(f"not a version number: {text!r}")
    return int(text)


def _done(request: Request, branch: str, message: str, version: int | None = None) -> Response:
    """Back to the timeline, on the page showing ``version``, with a notice only this inspector signs."""
    inspector = inspector_of(request)
    page = 1
    if version is not None:
        on_branch = inspector.spec.on(branch)
        listed = [v.version for v in reversed(on_branch.open_read().versions())]
        page = listed.index(version) // inspector.page_size + 1 if version in listed else 1
    sig = inspector.notice_signature(branch, message)
    target = url("/timeline", branch=branch, page=page, done=message, sig=sig)
    return RedirectResponse(target + (f"#v{version}" if version is not None else ""), 303)


def _tag(spec: StoreSpec, name: str, version: int) -> str:
    _check_name("tag", name)
    store = spec.open_write()
    try:
        store.tag(name, version)
    except InvalidFilterError as exc:  # a tag of that name on any branch: said without the Python call
        raise ValueError(str(exc).split(";")[0]) from None
    return f"tagged {spec.branch}@{version} as {name}"


def _check_name(kind: str, name: str) -> None:
    problem = name_problem(kind, name)
    if problem is not None:
        raise ValueError(problem)


def _branch(spec: StoreSpec, name: str, version: int) -> str:
    _check_name("branch", name)
    spec.open_write().branch(name, version)
    return f"created branch {name} from {spec.branch}@{version}"


def _restore(spec: StoreSpec, version: int) -> str:
    new = spec.open_write().restore(version)
    return f"restored {spec.branch}@{version} as version {new}"


async def tag(request: Request) -> Response:
    """Tag a version."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    spec = _spec(request, form.get("branch", "main"))
    version = _version(form)
    message = await run_in_threadpool(_tag, spec, form.get("name", "").strip(), version)
    return _done(request, spec.branch, message, version)


async def branch(request: Request) -> Response:
    """Create a branch from a version."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    name = form.get("name", "").strip()
    message = await run_in_threadpool(
        _branch, _spec(request, form.get("branch", "main")), name, _version(form)
    )
    return _done(request, name, message)


async def restore(request: Request) -> Response:
    """Make a past version the latest again (a new version)."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    spec = _spec(request, form.get("branch", "main"))
    message = await run_in_threadpool(_restore, spec, _version(form))
    return _done(request, spec.branch, message)


ACTION_ROUTES = [
    Route("/actions/tag", tag, methods=["POST"]),
    Route("/actions/branch", branch, methods=["POST"]),
    Route("/actions/restore", restore, methods=["POST"]),
]
