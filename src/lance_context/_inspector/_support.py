"""What every page shares: the open stores, the view a request asks for, templates, paging."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from lance_context import DEFAULT_EMBEDDER, ContextStore, EncryptionError, LanceContextError

from .._cli._conversation import Binary, human_bytes, short
from .._cli._keys import KEY_FILE_ENV, explain
from .._cli._refs import MAIN, NotFound, StoreSpec, View, open_view, resolve_ref

__all__ = ["Inspector", "Pager", "checked_ref", "for_the_page", "known_branch", "render", "url"]

TEMPLATES = Path(__file__).parent / "templates"


def url(path: str, **params: object) -> str:
    """``path?a=1&b=2``, leaving out parameters that are None or empty."""
    kept = {k: str(v) for k, v in params.items() if v is not None and v != ""}
    return path + ("?" + urlencode(kept) if kept else "")


def _when(stamp: datetime | None) -> str:
    if stamp is None:
        return "-"
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pretty(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=repr)


def _store_name(uri: str) -> str:
    """A local store by its folder name (the full path is in the tooltip); others in full."""
    if "://" in uri and not uri.startswith("file://"):
        return uri
    return uri.rstrip("/").rsplit("/", 1)[-1]


#: How an inspector is given a key (``{which}``: "its" or "that").
_RESTART = (
    "restart the inspector with {which} key: lance-context serve URI --key-file PATH (or "
    + KEY_FILE_ENV
    + ")"
)


def for_the_page(exc: Exception) -> str:
    """An error's message for a page: a KeyError's without quotes, a command's name reworded."""
    if isinstance(exc, EncryptionError):
        return explain(exc, _RESTART)
    message = str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)
    return message.replace(
        "(lance-context sessions URI lists them)", "(the Sessions page lists them)"
    ).replace("(lance-context branch URI lists them)", "(the timeline lists them)")


#: The bidi controls of "Trojan Source" (CVE-2021-42574): embeddings, overrides and isolates. A stored
#: value holding one could show "safe\u202egpj.exe" as "safeexe.jpg"; the page shows them as "[U+202E]".
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def checked_ref(text: str) -> str:
    """A version reference from a request, refused when its number's digits are not ASCII ones ("main@²")."""
    number = text.rpartition("@")[2]
    if number.isdigit() and not number.isascii():
        raise ValueError(f"not a version number: {text!r} (write it with the digits 0-9)")
    return text


class _Exact(str):
    """A string to render as it is stored: a form field's value, which must come back unchanged."""

    __slots__ = ()


def _exact(value: object) -> _Exact:
    return _Exact(value)


def _reveal(value: object) -> object:
    """Every ``{{ value }}`` of a page: bidi controls made visible (markup and ``|exact`` values kept)."""
    if isinstance(value, str) and not isinstance(value, Markup | _Exact):
        return _BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)
    return value


def _css(value: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", value.lower())[:40]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every stored value is escaped, in text and in attributes
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_reveal,
    )
    env.filters.update(
        when=_when,
        short=short,
        bytes=human_bytes,
        pretty=_pretty,
        css=_css,
        store_name=_store_name,
        exact=_exact,
    )
    env.globals.update(url=url)
    return env


@dataclass
class Pager:
    """One page of a list: ``items`` is the page; links keep the other query parameters."""

    page: int
    size: int
    total: int

    @classmethod
    def of(cls, request: Request, size: int, total: int) -> Pager:
        """The page the request asks for (``?page=N``, 1-based), clamped to the list."""
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            page = 1
        pages = max(1, math.ceil(total / size))
        return cls(min(max(page, 1), pages), size, total)

    @property
    def pages(self) -> int:
        """How many pages there are."""
        return max(1, math.ceil(self.total / self.size))

    @property
    def start(self) -> int:
        """Index of the page's first item."""
        return (self.page - 1) * self.size

    def slice(self, items: list[Any]) -> list[Any]:
        """The page's items of the whole list."""
        return items[self.start : self.start + self.size]

    def link(self, request: Request, page: int) -> str:
        """The URL of another page of the same list."""
        params = {
            k: v for k, v in request.query_params.items() if k not in ("done", "sig")
        }  # a notice shows once
        params["page"] = str(page)
        return request.url.path + "?" + urlencode(params)


class Inspector:
    """The store an inspector shows, and its read-only handles (one per branch, reused)."""

    def __init__(self, spec: StoreSpec, allow_writes: bool, csrf_token: str, page_size: int) -> None:
        self.spec = spec
        self.allow_writes = allow_writes
        self.csrf_token = csrf_token
        self.page_size = page_size
        self.templates = _environment()
        self._stores: dict[str, ContextStore] = {}
        self._lock = threading.Lock()

    def store(self, branch: str) -> ContextStore:
        """The read-only store of a branch (it searches with the store's recorded embedder)."""
        with self._lock:
            if branch not in self._stores:
                self._stores[branch] = self.spec.open_read(branch, embedder=DEFAULT_EMBEDDER)
            return self._stores[branch]

    def view(self, request: Request) -> View:
        """The version a request asks for: ``?branch=NAME&at=VERSION|TAG|BRANCH@VERSION`` (else latest)."""
        branch = request.query_params.get("branch") or self.spec.branch
        at_text = checked_ref(request.query_params.get("at", "").strip())
        if at_text and not at_text.isdigit():  # a tag (on any branch) or BRANCH@VERSION
            return resolve_ref(self.spec, at_text, embedder=DEFAULT_EMBEDDER)
        at = int(at_text) if at_text else None
        try:
            return open_view(self.spec, at, branch=branch, store=self.store(branch))
        except LanceContextError:
            if branch != MAIN and branch not in self.store(MAIN).branches():  # deleted since it was opened
                with self._lock:
                    self._stores.pop(branch, None)
                raise NotFound(f"no branch named {branch!r}") from None
            raise

    def notice_signature(self, branch: str, message: str) -> str:
        """A signature that shows a notice came from this inspector's own redirect."""
        key = self.csrf_token.encode()
        return hmac.new(key, f"{branch}\n{message}".encode(), hashlib.sha256).hexdigest()[:32]

    def notice(self, request: Request) -> str | None:
        """The ``?done=`` notice of a redirect after a write, only when this inspector signed it."""
        message, signature = request.query_params.get("done"), request.query_params.get("sig", "")
        branch = request.query_params.get("branch") or self.spec.branch
        if message and hmac.compare_digest(
            signature.encode(), self.notice_signature(branch, message).encode()
        ):
            return message
        return None

    def binary_url(self, view: View, binary: Binary) -> str:
        """Where the page loads a binary payload from."""
        return url("/binary", record=binary.record_id, branch=view.branch, at=view.version)


def known_branch(request: Request) -> str | None:
    """The request's ``?branch=`` when the store has that branch (and it is not the default), else None.

    What an error page links back to: a bad name is never carried on.
    """
    inspector = inspector_of(request)
    branch = request.query_params.get("branch")
    if not branch or branch == inspector.spec.branch:
        return None
    try:
        return branch if branch in inspector.store(MAIN).branches() else None
    except (LanceContextError, LookupError, OSError):  # no store to ask: the default branch's timeline
        return None


def inspector_of(request: Request) -> Inspector:
    """The app's inspector."""
    found: Inspector = request.app.state.inspector
    return found


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page: the template with the common context (store, branch, write mode, CSRF token)."""
    inspector = inspector_of(request)
    if template == "error.html":  # its links keep the request's branch only when the store has it
        context = {"back_branch": known_branch(request), **context}
    page = inspector.templates.get_template(template).render(
        request=request,
        uri=inspector.spec.uri,
        allow_writes=inspector.allow_writes,
        csrf=inspector.csrf_token,
        nav_branch=request.query_params.get("branch") or inspector.spec.branch,
        **context,
    )
    return HTMLResponse(page, status)
