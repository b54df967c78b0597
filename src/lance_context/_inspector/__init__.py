"""The web inspector: a store's memory and history in a browser (``lance-context serve``).

A Starlette app rendered on the server with Jinja2 templates, served by uvicorn: no
build step, no JavaScript, no CDN (the one stylesheet ships in ``static/``). Pages:
the timeline of versions (with branches and tags), sessions, a conversation as of any
version, a diff between any two versions, search, and LangGraph threads. It reads
through the same read model as the command line (``lance_context._cli``).

Safe by default: it listens on 127.0.0.1 and refuses other ``Host`` headers (DNS
rebinding), is read-only unless started with ``--allow-writes`` (tag, branch and
restore buttons, each a POST carrying a per-process CSRF token), escapes every stored
value, and sends a Content-Security-Policy that allows no script at all.

Example:
    >>> from lance_context._cli._refs import StoreSpec                      # doctest: +SKIP
    >>> app = create_app(InspectorConfig(StoreSpec("memory.lance")))        # doctest: +SKIP
"""

from __future__ import annotations

from ._app import InspectorConfig, create_app

__all__ = ["InspectorConfig", "create_app"]
