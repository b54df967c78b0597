"""The inspector's pages (GET): timeline, sessions, conversation, binary, diff, search, threads."""

from __future__ import annotations

import dataclasses
import itertools
import mimetypes
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lance_context import LanceContextError
from lance_context.adapters import LANGGRAPH_CHECKPOINTS

from .._cli._conversation import INLINE_IMAGES, build_turns, diff_groups, session_kind, session_order
from .._cli._facts import all_tags, diff_views, session_summaries, store_facts, version_changes
from .._cli._refs import NotFound, as_mode, open_view, resolve_ref
from .._cli._render import find_session
from .._cli._threads import LangGraphMissing, thread_checkpoints, thread_id_of
from ._support import Pager, checked_ref, for_the_page, inspector_of, render, url
from ._tables import table_previews

__all__ = ["CONVERSATION_PAGE", "PAGE_ROUTES"]

#: Records per page of a conversation.
CONVERSATION_PAGE = 50
#: Checkpoints per page of a thread.
THREAD_PAGE = 10
#: Records listed per session and side of a diff.
DIFF_LIMIT = 20
#: The most hits a search shows.
MAX_HITS = 100


def timeline(request: Request) -> Response:
    """Versions of a branch, newest first, with what each changed; branches and tags beside."""
    inspector = inspector_of(request)
    view = inspector.view(request)
    if not view.latest:  # the timeline is the branch's whole history, counted as of its latest version
        view = open_view(inspector.spec, branch=view.branch, store=inspector.store(view.branch))
    history = view.store.versions()
    previous = {later.version: earlier.version for earlier, later in itertools.pairwise(history)}
    pager = Pager.of(request, inspector.page_size, len(history))
    shown = pager.slice(list(reversed(history)))
    changes = version_changes(view, history, [info.version for info in shown])
    facts = store_facts(view)
    return render(
        request,
        "timeline.html",
        {
            "title": f"Timeline of {view.branch}",
            "view": view,
            "versions": shown,
            "changes": changes,
            "previous": previous,
            "pager": pager,
            "facts": facts,
            "tags": all_tags(view),
            "branches": view.store.branches(),
            "records": view.store.count(),
            "done": inspector.notice(request),
        },
    )


def sessions(request: Request) -> Response:
    """Every session as of a version, searchable by id."""
    inspector = inspector_of(request)
    view = inspector.view(request)
    query = request.query_params.get("q", "").strip()
    found = [s for s in session_summaries(view) if query.lower() in s.run_id.lower()]
    pager = Pager.of(request, inspector.page_size * 2, len(found))
    return render(
        request,
        "sessions.html",
        {
            "title": "Sessions",
            "view": view,
            "sessions": pager.slice(found),
            "pager": pager,
            "q": query,
            "thread_id_of": thread_id_of,
        },
    )


#: Records read either side of a conversation page, so that a tool call and its results stay together.
_AROUND = 8


def conversation(request: Request) -> Response:
    """One session as of a version: turns, images inline, tool calls folded, metadata on demand."""
    inspector = inspector_of(request)
    view = inspector.view(request)
    run_id = find_session(view.store.run_ids(), request.query_params.get("run", ""))
    total = view.store.count(run_id)
    pager = Pager.of(request, CONVERSATION_PAGE, total)
    # a tool call's results stay with it across a page boundary: read a few records either side, fold,
    # and keep the turns that start on this page (a result folded into the page before is not repeated)
    lo = max(0, pager.start - _AROUND)
    records = view.store.records(run_id, offset=lo, limit=pager.start - lo + pager.size + _AROUND)
    turns = [
        t
        for t in build_turns(records, lo)
        if t.position is not None and pager.start <= t.position < pager.start + pager.size
    ]
    return render(
        request,
        "session.html",
        {
            "title": run_id,
            "view": view,
            "run_id": run_id,
            "kind": session_kind(run_id),
            "total": total,
            "turns": turns,
            "pager": pager,
            "thread": thread_id_of(run_id),
            "binary_url": lambda b: inspector.binary_url(view, b),
            "tables": table_previews(records),
        },
    )


def binary(request: Request) -> Response:
    """A record's binary payload: raster images inline, anything else as a download."""
    view = inspector_of(request).view(request)
    record = view.store.get(request.query_params.get("record", ""))
    if record is None or record.binary_payload is None:
        raise NotFound("no such binary at this version")
    kind = record.content_type.split(";")[0].strip().lower()
    if kind in INLINE_IMAGES:
        return Response(record.binary_payload, media_type=kind)
    extension = _EXTENSIONS.get(kind) or mimetypes.guess_extension(kind) or ".bin"
    return Response(
        record.binary_payload,
        media_type="application/octet-stream",
        headers={"content-disposition": f'attachment; filename="payload{extension}"'},
    )


#: Download names for what ``mimetypes`` does not know (an Arrow table opens in pyarrow as ``.arrows``).
_EXTENSIONS = {"application/vnd.apache.arrow.stream": ".arrows", "application/octet-stream": ".bin"}


def diff(request: Request) -> Response:
    """Records added and removed between two references, per session."""
    inspector = inspector_of(request)
    before_ref = checked_ref(request.query_params.get("a", "").strip())
    after_ref = checked_ref(request.query_params.get("b", "").strip())
    context: dict[str, Any] = {
        "title": "Diff",
        "a": before_ref,
        "b": after_ref,
        "groups": None,
        "limit": DIFF_LIMIT,
        "error": None,
    }
    if after_ref and not before_ref:
        # "to" alone is not guessed into a diff ("the version before it" means nothing for a tag or a
        # branch): the form says which side is missing; "to" alone may be left out (it means the latest)
        context["error"] = (
            f'say which version to compare {after_ref!r} with: fill in "from" '
            '("to" may be left empty for the branch\'s latest version)'
        )
        return render(request, "diff.html", context, 400)
    if before_ref:
        spec = dataclasses.replace(
            inspector.spec, branch=request.query_params.get("branch") or inspector.spec.branch
        )
        before = resolve_ref(spec, before_ref)
        after = resolve_ref(spec, after_ref or None)
        result = diff_views(before, after)
        still = set(after.store.run_ids())  # a session the diff removed whole is linked as it was before
        grouped = list(diff_groups(result.added, result.removed).items())
        pager = Pager.of(request, inspector.page_size, len(grouped))
        context.update(
            before=before,
            after=after,
            result=result,
            kind=session_kind,
            side_of=lambda run_id: after if run_id in still else before,
            pager=pager,
            sessions=len(grouped),
            groups={  # only what the page shows is turned into turns
                run_id: {
                    side: (len(records), build_turns(records[:DIFF_LIMIT], None))
                    for side, records in group.items()
                }
                for run_id, group in pager.slice(grouped)
            },
        )
    return render(request, "diff.html", context)


def search(request: Request) -> Response:
    """Vector, text or hybrid search as of a version, each hit placed in its conversation."""
    inspector = inspector_of(request)
    params = request.query_params
    try:
        view = inspector.view(request)
        bad_version = None
    except (LookupError, LanceContextError, ValueError) as exc:
        # a bad "as of" keeps the form (at the branch's latest, with what was typed) and says why; 404 or
        # 400 as every other page answers a bad version. A bad branch has no form to show: its error page.
        bad_version = exc
        branch = params.get("branch") or inspector.spec.branch
        try:
            view = open_view(inspector.spec, branch=branch, store=inspector.store(branch))
        except (LookupError, LanceContextError):
            raise exc from None
    vectors = view.store.dimension is not None and view.store.embedder is not None
    query, mode, session = (
        params.get("q", ""),
        params.get("mode") or ("vector" if vectors else "text"),  # a store without vectors: text
        params.get("session", "").strip(),
    )
    k_text = params.get("k", "").strip()
    k = int(k_text) if k_text.isascii() and k_text.isdigit() else 10
    context: dict[str, Any] = {
        "title": "Search",
        "view": view,
        "q": query,
        "mode": mode,
        "k": k_text or k,
        "session": session,
        "at": params.get("at", "") if bad_version else ("" if view.latest else view.version),
        "hits": None,
        "error": None,
    }
    if bad_version is not None:  # nothing is searched: the latest is not what was asked for
        context["error"] = for_the_page(bad_version)
        return render(request, "search.html", context, 404 if isinstance(bad_version, LookupError) else 400)
    if k_text and not (k_text.isascii() and k_text.isdigit() and 1 <= k <= MAX_HITS):
        context["error"] = f"k (how many hits) must be a whole number from 1 to {MAX_HITS}, not {k_text!r}"
        return render(request, "search.html", context, 400)
    if query:
        try:
            run_id = find_session(view.store.run_ids(), session) if session else None
            hits = view.store.search(query, k=k, mode=as_mode(mode), run_id=run_id)
        except (LanceContextError, NotFound, ValueError) as exc:
            context["error"] = (
                "this store holds no vectors, so only text search works here: choose mode text"
                if mode in ("vector", "hybrid") and view.store.dimension is None
                else for_the_page(exc)
            )
            return render(request, "search.html", context, 400)
        order = session_order(view.store, [h.record.run_id for h in hits])
        rows = []
        for hit in hits:
            ids = order.get(hit.record.run_id, [])
            position = ids.index(hit.record.id) if hit.record.id in ids else 0
            page = position // CONVERSATION_PAGE + 1
            rows.append(
                {
                    "hit": hit,
                    "turn": build_turns([hit.record], position)[0],
                    "position": position,
                    "total": len(ids),
                    "kind": session_kind(hit.record.run_id),
                    "link": url(
                        "/session", run=hit.record.run_id, branch=view.branch, at=view.version, page=page
                    )
                    + f"#r-{hit.record.id}",
                }
            )
        context.update(
            hits=rows,
            binary_url=lambda b: inspector.binary_url(view, b),
            tables=table_previews(h.record for h in hits),
        )
    return render(request, "search.html", context)


def threads(request: Request) -> Response:
    """LangGraph threads as of a version."""
    inspector = inspector_of(request)
    view = inspector.view(request)
    found = session_summaries(view, LANGGRAPH_CHECKPOINTS.prefix)
    pager = Pager.of(request, inspector.page_size * 2, len(found))  # as many a page as the Sessions page
    return render(
        request,
        "threads.html",
        {
            "title": "LangGraph threads",
            "view": view,
            "threads": pager.slice(found),
            "pager": pager,
            "thread_id_of": thread_id_of,
        },
    )


def thread(request: Request) -> Response:
    """A LangGraph thread's checkpoints, newest first, and the state at each."""
    view = inspector_of(request).view(request)
    thread_id = request.query_params.get("id", "")
    if LANGGRAPH_CHECKPOINTS.run_id(thread_id or "-") not in view.store.run_ids():
        raise NotFound(f"no LangGraph thread {thread_id!r} at {view.ref}")
    total = view.store.count(LANGGRAPH_CHECKPOINTS.run_id(thread_id), roles="checkpoint")
    pager = Pager.of(request, THREAD_PAGE, total)
    try:  # decode only this page's checkpoints and the newer ones, not the whole thread
        states = thread_checkpoints(view, thread_id, limit=pager.start + pager.size)[pager.start :]
    except LangGraphMissing as exc:
        return render(request, "error.html", {"title": "LangGraph missing", "message": str(exc)}, 501)
    return render(
        request,
        "thread.html",
        {
            "title": f"Thread {thread_id}",
            "view": view,
            "thread_id": thread_id,
            "states": states,
            "pager": pager,
            "total": total,
            "run_id": LANGGRAPH_CHECKPOINTS.run_id(thread_id),
        },
    )


def home(request: Request) -> Response:
    """The timeline is the front page."""
    return RedirectResponse(url("/timeline", branch=request.query_params.get("branch")), 307)


PAGE_ROUTES = [
    Route("/", home),
    Route("/timeline", timeline),
    Route("/sessions", sessions),
    Route("/session", conversation),
    Route("/binary", binary),
    Route("/diff", diff),
    Route("/search", search),
    Route("/threads", threads),
    Route("/thread", thread),
]
