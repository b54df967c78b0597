"""Read commands about content: ``show`` (a conversation), ``diff`` and ``search``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lance_context import ContextRecord, InvalidFilterError, SearchError, SearchHit

from ._common import (
    MAX_HITS,
    TABLE_BOX,
    as_of,
    console,
    emit_json,
    json_option,
    safe,
    spec_from,
    store_arguments,
    styled,
    version_options,
    when,
    whole_number,
)
from ._conversation import build_turns, diff_groups, session_kind, session_order, short
from ._facts import diff_views
from ._refs import View, as_mode, resolve_ref, search_embedder
from ._render import find_session, heading, plural, record_line, render_turns
from ._threads import CheckpointState, thread_checkpoints, thread_id_of

__all__ = ["COMMANDS"]

#: Records listed per session and side of a diff unless --full.
_DIFF_LINES = 10


def _show_thread(view: View, run_id: str, thread: str, last: int | None, as_json: bool) -> None:
    states = thread_checkpoints(view, thread, limit=last)
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "kind": session_kind(run_id),
                "version": view.version,
                "checkpoints": [s.to_json() for s in states],
            }
        )
        return
    out = console()
    parts = [run_id, f"LangGraph thread {thread!r}", f"{plural(len(states), 'checkpoint')} shown"]
    out.print(heading([*parts, view.describe()], "bold", out.width))
    latest = next((s for s in states if not s.namespace), None)  # the graph's own, not a subgraph's
    if latest is not None and latest.sealed:
        out.print(
            styled(
                f"\nthe checkpoints are stored as {latest.sealed!r}, which this command cannot read "
                "(an encrypting serializer's, such as LangGraph's EncryptedSerializer): "
                "their state is not shown\n",
                "dim",
            )
        )
    if latest is not None and latest.messages:
        out.print(styled("\nmessages in the latest checkpoint:\n", "dim"))
        out.print(render_turns(latest.messages))
    out.print(_checkpoint_table(out, states))


def _checkpoint_table(out: Console, states: list[CheckpointState]) -> Table:
    """A thread's checkpoints, with as many columns as the terminal holds.

    Until the rest fits, the time is left out, then checkpoint ids fold into two halves
    at a hyphen, then the other channels and the pending writes go (``--json`` has all).
    """
    rows = [
        {
            "step": str(s.step), "source": str(s.source), "time (UTC)": when(s.created_at),
            "graph": s.namespace.split(":", 1)[0] or "(root)", "checkpoint id": s.checkpoint_id,
            "messages": "?" if s.sealed else str(s.message_count), "writes": str(s.pending_writes),
            "other channels": short(", ".join(s.channels), 40),
        }
        for s in states
    ]  # fmt: skip
    columns = list(rows[0]) if rows else ["step", "source", "checkpoint id", "messages", "writes"]
    if rows and not any(s.namespace for s in states):  # a subgraph's checkpoints: say whose each one is
        columns.remove("graph")
    folded = False
    for step in ("time (UTC)", "fold ids", "other channels", "writes", None):
        # each column takes its widest cell (other channels wrap in 16), padding and a separator
        widths = [max([cell_len(c), *(cell_len(r[c]) for r in rows)]) for c in columns]
        widths = [16 if c == "other channels" else 18 if c == "checkpoint id" and folded else w
                  for c, w in zip(columns, widths, strict=True)]  # fmt: skip
        if sum(w + 3 for w in widths) + 1 <= out.width or step is None:
            break
        if step == "fold ids":
            folded = True  # a UUID's first and last 18 characters
        elif step in columns:
            columns.remove(step)
    table = Table(title="checkpoints, newest first", title_justify="left", box=TABLE_BOX)
    for column in columns:
        wraps = column == "other channels" or (column == "checkpoint id" and folded)
        width = 18 if column == "checkpoint id" and folded else None
        table.add_column(
            column, no_wrap=not wraps, overflow="fold", min_width=16 if column == "other channels" else width,
            max_width=width,
        )  # fmt: skip
    for row in rows:
        table.add_row(*(styled(row[c]) for c in columns))  # stored text: never read as markup
    return table


@click.command()
@store_arguments()
@click.argument("session", required=False)
@version_options
@click.option(
    "--last", "-n", type=whole_number(1), metavar="N",
    help="Only the newest N records (of a LangGraph thread: N checkpoints).",
)  # fmt: skip
@json_option
def show(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    session: str | None,
    version: int | None,
    tag: str | None,
    last: int | None,
    as_json: bool,
) -> None:
    """A conversation as a person reads it (SESSION: a run id, or an adapter's own id).

    Tool calls show with their results, images and other binaries as summaries. A
    LangGraph thread shows the messages of its latest checkpoint and its checkpoints.
    Without SESSION, a store holding one session shows that one.
    """
    view = as_of(spec_from(uri, storage_options, branch), version, tag)
    run_ids = view.store.run_ids()
    run_id = find_session(run_ids, session) if session is not None else _only_session(run_ids)
    thread = thread_id_of(run_id)
    if thread is not None:
        _show_thread(view, run_id, thread, last, as_json)
        return
    records = view.store.records(run_id, last=last)
    # one record per id, as reads show them (count() also counts a second copy of an id)
    total = len(records) if last is None else view.store.outline(run_id).table.num_rows
    turns = build_turns(records, total - len(records))
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "kind": session_kind(run_id),
                "version": view.version,
                "records": total,
                "turns": [t.to_json() for t in turns],
            }
        )
        return
    out = console()
    count = plural(total, "record")
    shown = f"last {len(records)} of {count}" if len(records) < total else count
    out.print(heading([run_id, session_kind(run_id), shown, view.describe()], "bold", out.width))
    out.print()
    out.print(render_turns(turns))


def _only_session(run_ids: list[str]) -> str:
    """The store's one session, when SESSION is left out; else a usage error naming a few."""
    if len(run_ids) == 1:
        return run_ids[0]
    if not run_ids:
        raise click.UsageError("this version holds no session to show")
    named = ", ".join(safe(run_id) for run_id in run_ids[:3]) + (", ..." if len(run_ids) > 3 else "")
    raise click.UsageError(
        f"name the SESSION to show: this version holds {len(run_ids)} ({named}); "
        "lance-context sessions URI lists them"
    )


def _record_json(record: ContextRecord) -> dict[str, Any]:
    turn = build_turns([record], None)[0]
    data = turn.to_json()
    data.pop("position")
    return data


@click.command()
@store_arguments()
@click.argument("before")
@click.argument("after", required=False)
@click.option(
    "--full", is_flag=True, help=f"List every record (default: {_DIFF_LINES} per session and side)."
)
@json_option
def diff(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    before: str,
    after: str | None,
    full: bool,
    as_json: bool,
) -> None:
    """Records added and removed from BEFORE to AFTER, per session.

    Each is a version (12), a tag, a branch (its latest) or BRANCH@VERSION; AFTER
    defaults to the latest version of --branch. A record changed in place shows as
    removed and added.
    """
    spec = spec_from(uri, storage_options, branch)
    old, new = resolve_ref(spec, before), resolve_ref(spec, after)
    result = diff_views(old, new)
    groups = diff_groups(result.added, result.removed)
    if as_json:
        emit_json(
            {
                "from": {"branch": old.branch, "version": old.version},
                "to": {"branch": new.branch, "version": new.version},
                "added": len(result.added),
                "removed": len(result.removed),
                "sessions": [
                    {
                        "run_id": run_id,
                        "kind": session_kind(run_id),
                        "added": [_record_json(r) for r in g["added"]],
                        "removed": [_record_json(r) for r in g["removed"]],
                    }
                    for run_id, g in groups.items()
                ],
            }
        )
        return
    out = console()
    counts = f"{len(result.added)} added, {len(result.removed)} removed in {plural(len(groups), 'session')}"
    out.print(styled(f"{old.ref} → {new.ref}: {counts if groups else 'no records added or removed'}", "bold"))
    for run_id, group in groups.items():
        out.print()
        title = Text(safe(run_id), style="bold")
        title.append(
            f"  {session_kind(run_id)}  +{len(group['added'])} -{len(group['removed'])}", style="dim"
        )
        out.print(title)
        for mark, style, records in (("-", "red", group["removed"]), ("+", "green", group["added"])):
            for record in records if full else records[:_DIFF_LINES]:
                out.print(record_line(record, mark, style, out.width))
            if not full and len(records) > _DIFF_LINES:
                out.print(styled(f"  {mark} … {len(records) - _DIFF_LINES} more (--full shows all)", "dim"))


def _hit_json(hit: SearchHit, place: tuple[int, int] | None) -> dict[str, Any]:
    data = _record_json(hit.record)
    data.update(
        score=hit.score,
        channels=list(hit.channels),
        vector_distance=hit.vector_distance,
        text_score=hit.text_score,
        kind=session_kind(hit.record.run_id),
        position=None if place is None else place[0],
        session_records=None if place is None else place[1],
    )
    return data


def _places(view: View, hits: list[SearchHit]) -> list[tuple[int, int] | None]:
    order = session_order(view.store, [h.record.run_id for h in hits])
    places: list[tuple[int, int] | None] = []
    for hit in hits:
        ids = order.get(hit.record.run_id, [])
        places.append((ids.index(hit.record.id), len(ids)) if hit.record.id in ids else None)
    return places


@click.command()
@store_arguments()
@click.argument("query")
@version_options
@click.option(
    "--mode",
    "-m",
    type=click.Choice(["vector", "text", "hybrid"]),
    default="vector",
    show_default=True,
    help="Vector (embeddings), text (BM25) or both fused.",
)
@click.option(
    "-k",
    "k",
    type=whole_number(1, MAX_HITS),
    default=10,
    show_default=True,
    metavar="N",
    help="How many hits.",
)
@click.option("--session", "-s", metavar="SESSION", help="Only this session (a run id or an adapter's id).")
@click.option("--role", "-r", "roles", multiple=True, metavar="ROLE", help="Only these roles; repeatable.")
@click.option("--where", "-w", metavar="JSON", help='A filter, such as \'{"metadata.topic": "travel"}\'.')
@json_option
def search(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    query: str,
    version: int | None,
    tag: str | None,
    mode: str,
    k: int,
    session: str | None,
    roles: tuple[str, ...],
    where: str | None,
    as_json: bool,
) -> None:
    """Search the store (as of any version), with scores and each hit's place in its session."""
    if not query.strip():
        raise click.BadParameter("the query is empty: give the words to search for", param_hint="QUERY")
    try:
        where_filter = None if where is None else json.loads(where)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--where") from exc
    if where_filter is not None and not isinstance(where_filter, dict):
        raise click.BadParameter(
            f'give a JSON object such as \'{{"role": "user"}}\', not {where!r}', param_hint="--where"
        )
    view = as_of(
        spec_from(uri, storage_options, branch),
        version,
        tag,
        embedder=None if mode == "text" else search_embedder(),
    )
    run_id = None if session is None else find_session(view.store.run_ids(), session)
    try:
        hits = view.store.search(
            query, k=k, mode=as_mode(mode), run_id=run_id, roles=list(roles) or None, where=where_filter
        )
    except InvalidFilterError as exc:  # what --where says cannot be a filter: a wrong command line
        raise click.BadParameter(str(exc), param_hint="--where" if where else None) from None
    except SearchError as exc:
        if "opened without an embedder" in str(exc):
            raise click.ClickException(
                f"{uri} was embedded by a model the command line cannot load, so a text query cannot be "
                "embedded the same way: search with --mode text"
            ) from None
        if "encrypts its text" in str(exc):  # the core's refusal, with the option to use instead
            message = str(exc).replace("use mode='vector'", "search with --mode vector")
            raise click.ClickException(message) from None
        if "holds no vectors" not in str(exc):
            raise
        raise click.ClickException(
            f"{uri} holds no vectors: search with --mode text, or add them with "
            f"`lance-context reembed {uri} --embedder NAME`"
        ) from None
    places = _places(view, hits)
    if as_json:
        emit_json(
            {
                "query": query,
                "mode": mode,
                "version": view.version,
                "branch": view.branch,
                "hits": [_hit_json(h, p) for h, p in zip(hits, places, strict=True)],
            }
        )
        return
    if not hits:
        console().print(styled(f"no hits for {query!r} ({mode}) · {view.describe()}"))
        return
    # Text, on a line of its own: a table's title is read as markup (a query holding "[/b]"
    # would crash) and wraps at the table's width
    title = [f"{plural(len(hits), 'hit')} for {query!r} ({mode})", view.describe()]
    table = Table(box=TABLE_BOX)
    for column in ("#", "score", "session", "place", "role", "content"):
        table.add_column(
            column,
            justify="right" if column in ("#", "score", "place") else "left",
            overflow="fold" if column == "session" else "ellipsis",
        )
    for rank, (hit, place) in enumerate(zip(hits, places, strict=True), start=1):
        turn = build_turns([hit.record], None)[0]
        content = turn.text or "; ".join(b.summary() for b in turn.binaries) or f"<{hit.record.content_type}>"
        table.add_row(
            str(rank),
            f"{hit.score:.3f}",
            styled(hit.record.run_id),
            "-" if place is None else f"{place[0] + 1}/{place[1]}",
            styled(hit.record.role),
            styled(short(content, 80)),
        )
    out = console()
    out.print(heading(title, "italic", out.width))
    out.print(table)


COMMANDS = [show, diff, search]
