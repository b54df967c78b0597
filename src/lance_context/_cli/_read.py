"""Read commands about the whole store: ``info``, ``sessions`` and ``log``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lance_context.adapters import NAMESPACES

from ._common import (
    TABLE_BOX,
    as_of,
    console,
    emit_json,
    json_option,
    limit_option,
    narrow,
    safe,
    spec_from,
    store_arguments,
    styled,
    version_options,
    when,
)
from ._conversation import human_bytes
from ._facts import SessionSummary, all_tags, session_summaries, store_facts, version_changes
from ._refs import View, open_view
from ._render import heading, plural

__all__ = ["COMMANDS"]


def _info_data(view: View) -> dict[str, Any]:
    facts = store_facts(view)
    sessions = session_summaries(view)
    kinds: dict[str, int] = {}
    for session in sessions:
        kinds[session.kind] = kinds.get(session.kind, 0) + 1
    history = view.store.versions()
    return {
        "uri": view.spec.uri,
        "branch": view.branch,
        "version": view.version,
        "latest": view.latest,
        "records": view.store.count(),
        "sessions": len(sessions),
        "session_kinds": kinds,
        "versions": len(history),
        "first_version": history[0].version if history else None,
        "branches": {
            name: None
            if name not in facts.branch_parents
            else dict(zip(("parent", "version"), facts.branch_parents[name], strict=True))
            for name in view.store.branches()
        },
        "tags": {name: {"branch": b, "version": v} for name, (b, v) in all_tags(view).items()},
        "fragments": facts.fragments,
        "deleted_rows": facts.deleted_rows,
        "version_bytes": facts.version_bytes,
        "disk_bytes": facts.disk_bytes,
        "indexes": [
            {"name": i.name, "kind": i.kind, "columns": list(i.columns), "rows": i.rows, "bytes": i.bytes}
            for i in facts.indexes
        ],
        "embedder": facts.embedder,
        "dimension": facts.dimension,
    }


def _indexes(indexes: list[dict[str, Any]], records: int) -> str:
    if not indexes:
        return "none"
    names = ", ".join(f"{i['name']} ({i['kind']})" for i in indexes)
    behind = [i for i in indexes if i["rows"] < records]
    if not behind:
        return names
    covered = min(i["rows"] for i in behind)
    return f"{names}; {covered:,} of {records:,} rows indexed, newer rows are still found (without the index)"


@click.command()
@store_arguments()
@version_options
@json_option
def info(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    version: int | None,
    tag: str | None,
    as_json: bool,
) -> None:
    """Records, sessions, versions, branches, tags, storage, indexes and embedder."""
    view = as_of(spec_from(uri, storage_options, branch), version, tag)
    data = _info_data(view)
    if as_json:
        emit_json(data)
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    kinds = ", ".join(plural(count, kind) for kind, count in sorted(data["session_kinds"].items()))
    branches = ", ".join(
        name if parent is None else f"{name} (from {parent['parent']}@{parent['version']})"
        for name, parent in data["branches"].items()
    )
    tags = ", ".join(f"{name} → {t['branch']}@{t['version']}" for name, t in data["tags"].items())
    disk = "unknown" if data["disk_bytes"] is None else human_bytes(data["disk_bytes"])
    rows = [
        ("Store", data["uri"]),
        ("Reading", view.describe()),
        ("Records", f"{data['records']:,}"),
        ("Sessions", f"{data['sessions']:,}" + (f"  ({kinds})" if kinds else "")),
        ("Versions", f"{data['versions']:,} on {view.branch} (oldest kept: {data['first_version']})"),
        ("Branches", branches),
        ("Tags", tags or "none"),
        (
            "Storage",
            f"{plural(data['fragments'], 'fragment')}, {human_bytes(data['version_bytes'])} in this version, "
            f"{disk} on disk (every version and branch)",
        ),
        ("Indexes", _indexes(data["indexes"], data["records"])),
        (
            "Embedder",
            "none" if not data["embedder"] else f"{data['embedder']} ({data['dimension']} dimensions)",
        ),
    ]
    for label, value in rows:
        table.add_row(label, styled(str(value)))
    console().print(table)


def _namespace_prefix(namespace: str | None, prefix: str | None) -> str | None:
    if namespace is None:
        return prefix
    if namespace not in NAMESPACES:
        raise click.BadParameter(
            f"unknown namespace {namespace!r}; known: {', '.join(NAMESPACES)}", param_hint="--namespace"
        )
    return NAMESPACES[namespace].prefix + (prefix or "")


@click.command()
@store_arguments()
@version_options
@click.option("--prefix", "-p", metavar="TEXT", help="Only sessions whose run id starts with TEXT.")
@click.option(
    "--namespace",
    "-n",
    metavar="NAME",
    help="Only one adapter's sessions, such as langchain.history or langgraph.checkpoints.",
)
@json_option
def sessions(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    version: int | None,
    tag: str | None,
    prefix: str | None,
    namespace: str | None,
    as_json: bool,
) -> None:
    """Each session with its kind, record count, roles, and first and last activity."""
    view = as_of(spec_from(uri, storage_options, branch), version, tag)
    found = session_summaries(view, _namespace_prefix(namespace, prefix))
    if as_json:
        emit_json(
            [
                {
                    "run_id": s.run_id,
                    "kind": s.kind,
                    "namespace": None if s.namespace is None else s.namespace.name,
                    "key": s.key,
                    "records": s.records,
                    "roles": s.roles,
                    "first": s.first,
                    "last": s.last,
                }
                for s in found
            ]
        )
        return
    out = console()
    if not found:
        which = " matching --prefix/--namespace" if prefix or namespace else ""
        out.print(styled(f"no sessions{which} · {view.describe()}"))
        return
    # the title is a line of its own: as a table's title it would wrap at the table's width
    out.print(heading([plural(len(found), "session"), view.describe()], "italic", out.width))
    out.print(_sessions_table(found, out))


def _sessions_table(found: list[SessionSummary], out: Console) -> Table:
    """Sessions as a table that fits ``out``: the roles break between roles, never inside one.

    No minimum widths: Rich honours them by cropping the last column instead of wrapping.
    The short columns stay unwrapped, long session names fold, and an 80-column terminal
    leaves the kind out (the session name's prefix says it).
    """
    table = Table(box=TABLE_BOX, collapse_padding=True, pad_edge=False)
    small = narrow(out)
    active = [_active(s.first, s.last) for s in found]
    # measured as shown: control characters escaped, wide characters two cells
    longest = max(cell_len(safe(s.run_id)) for s in found)
    roles = [", ".join(f"{safe(role)} {count}" for role, count in s.roles.items()) for s in found]
    fixed = [min(longest, 32), max(len("records"), *(len(f"{s.records:,}") for s in found))]
    fixed += [max(len("active (UTC)"), *map(len, active))] + (
        [] if small else [max(len(s.kind) for s in found)]
    )
    room = out.width - 2 - 2 * len(fixed) - sum(fixed)  # two spaces between columns, one at each edge
    item = max(cell_len(part) for text in roles for part in text.split(", "))
    table.add_column("session", no_wrap=longest <= 32, overflow="fold")
    if not small:
        table.add_column("kind")
    table.add_column("records", justify="right", no_wrap=True)
    table.add_column("roles", overflow="fold")
    table.add_column("active (UTC)", no_wrap=max(map(len, active)) <= 22)
    for s, text, span in zip(found, roles, active, strict=True):
        kind = [] if small else [s.kind]
        table.add_row(styled(s.run_id), *kind, f"{s.records:,}", Text(_packed(text, max(room, item))), span)
    return table


def _packed(roles: str, width: int) -> str:
    """``ai 2, human 2, tool 1`` in lines of at most ``width``, broken between roles only."""
    lines: list[str] = []
    for item in roles.split(", "):
        if lines and cell_len(lines[-1]) + 2 + cell_len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines.append(item)
    return "\n".join(lines)


def _active(first: datetime, last: datetime) -> str:
    """``2026-11-30 14:18-16:02`` within a day, else both dates and times."""
    start, end = when(first)[:16], when(last)[:16]
    if start == end:
        return start
    return f"{start}-{end[11:]}" if start[:10] == end[:10] else f"{start} → {end}"


def _touched(sessions: list[str]) -> str:
    return ", ".join(sessions[:3]) + (f" +{len(sessions) - 3} more" if len(sessions) > 3 else "")


def _count(sign: str, value: int, known: bool) -> str:
    if not known:
        return "?"
    return f"{sign}{value:,}" if value else ""


def _broken(text: str, width: int, marks: str = ":./, ") -> str:
    """``text`` in lines of at most ``width`` cells, each ending after one of ``marks`` when one fits."""
    lines = []
    while cell_len(text) > width > 0:
        fits = _fitting(text, width)
        cut = max(text.rfind(mark, 0, fits) for mark in marks)
        cut = cut + 1 if cut > 0 else fits
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return "\n".join([*lines, text])


def _fitting(text: str, width: int) -> int:
    """How many characters of ``text`` fit in ``width`` cells (at least one)."""
    cells = 0
    for count, char in enumerate(text):
        cells += cell_len(char)
        if cells > width:
            return max(count, 1)
    return len(text)


def _widths(columns: list[str], rows: list[list[Text]], width: int) -> tuple[list[int], int, int]:
    """The ``log`` table's minimum widths, and the widest its sessions and tags columns may be.

    A session name reads best unbroken (up to 24 characters). Rich crops a row, instead of
    wrapping it, when it must shrink a column below its minimum width, so the two columns
    that wrap (sessions and tags) share exactly the room the unwrapped ones leave.
    """
    at, tags = columns.index("sessions"), columns.index("tags")
    fixed = sum(
        max([len(c)] + [r[k].cell_len for r in rows]) for k, c in enumerate(columns) if k not in (at, tags)
    )
    room = width - 2 - 2 * (len(columns) - 1) - fixed
    longest = max([r[at].cell_len for r in rows] + [0])
    tags_longest = max([r[tags].cell_len for r in rows] + [len("tags")])
    sessions = max(len("sessions"), min(longest, room - min(tags_longest, max(len("tags"), room // 3))))
    mins = [
        min(sessions, max(len(c), min(longest, 24))) if k == at else len(c) for k, c in enumerate(columns)
    ]
    return mins, sessions, max(len("tags"), room - sessions)


@click.command()
@store_arguments()
@limit_option("versions")
@json_option
def log(uri: str, storage_options: tuple[str, ...], branch: str, limit: int, as_json: bool) -> None:
    """Versions newest first: time, operation, rows added and removed, sessions touched, tags."""
    view = open_view(spec_from(uri, storage_options, branch))
    history = view.store.versions()
    shown = list(reversed(history))[: limit or None]
    changes = version_changes(view, history, [info.version for info in shown])
    if as_json:
        emit_json(
            [
                {
                    "version": i.version,
                    "timestamp": i.timestamp,
                    "operation": i.operation,
                    "rows": i.rows,
                    "added": changes[i.version].added if changes[i.version].known else None,
                    "removed": changes[i.version].removed if changes[i.version].known else None,
                    "sessions": list(changes[i.version].sessions),
                    "tags": list(i.tags),
                }
                for i in shown
            ]
        )
        return
    table = Table(box=TABLE_BOX, collapse_padding=True, pad_edge=False)
    touched = {i.version: _touched(list(changes[i.version].sessions)) for i in shown}
    out = console()
    small = narrow(out)  # minutes only, no row totals
    columns = ["version", "time (UTC)", "operation", "rows", "+/-", "sessions", "tags"]
    if small:
        columns.remove("rows")
    rows: list[list[Text]] = []
    for i in shown:
        change = changes[i.version]
        stamp = when(i.timestamp)
        cells = [Text(str(i.version)), Text(stamp[:16] if small else stamp), Text(i.operation)]
        if not small:
            cells.append(Text(f"{i.rows:,}"))
        cells += [
            Text(" ").join(
                part
                for part in (
                    styled(_count("+", change.added, change.known), "green"),
                    styled(_count("-", change.removed, change.known) if change.known else "", "red"),
                )
                if part.plain
            ),
            styled(touched[i.version]),
            styled(", ".join(i.tags), "yellow"),
        ]
        rows.append(cells)
    mins, widest_sessions, widest_tags = _widths(columns, rows, out.width)
    widest = {"sessions": widest_sessions, "tags": widest_tags}
    at = columns.index("sessions")
    tagged = columns.index("tags")
    for cells in rows:  # a long name breaks after its ':' or '.' (a tag after '-'), not inside a word
        cells[at] = Text(_broken(cells[at].plain, widest_sessions), style=cells[at].style)
        cells[tagged] = Text(_broken(cells[tagged].plain, widest_tags, ",-_. "), style=cells[tagged].style)
    for column, minimum in zip(columns, mins, strict=True):
        table.add_column(
            column,
            justify="right" if column in ("version", "rows") else "left",
            no_wrap=column in ("version", "time (UTC)", "operation", "+/-"),
            min_width=minimum,
            max_width=widest.get(column),
            overflow="fold",
        )
    for cells in rows:
        table.add_row(*cells)
    # a line of its own: a table's title would wrap at the table's width, inside a long path
    parts = [view.spec.uri, f"branch {view.branch}", plural(len(history), "version")]
    out.print(heading(parts, "italic", out.width))
    out.print(table)
    if any(not changes[i.version].known for i in shown):
        out.print(
            styled("?: rows added and removed unknown (the version before it was removed by cleanup)", "dim")
        )
    if len(history) > len(shown):
        console().print(
            styled(
                f"{plural(len(history) - len(shown), 'older version')} not shown (--limit 0 shows all)", "dim"
            )
        )


COMMANDS = [info, sessions, log]
