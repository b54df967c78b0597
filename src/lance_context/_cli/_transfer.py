"""``export``: records to JSON Lines or Parquet, binaries included (``_import`` reads them back).

JSON Lines: a header line ``{"lance_context_export": 1, ...}`` naming the source
version and embedder, then one record per line (``binary`` in base64, ``embedding`` as
a list of floats or null). Parquet: one row per record, the same fields (``binary`` as
bytes, JSON fields as text), the header in the schema metadata. An import writes every
record in one commit, so it is one new version; records whose ids already exist are
replaced in their place (after a confirmation). Vectors travel with the records, so nothing is
re-embedded unless ``--drop-embeddings`` asks for it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress

from lance_context import (
    ContextRecord,
    Relationship,
    StateMetadata,
)

from ._common import as_of, err_console, spec_from, store_arguments, version_options
from ._facts import store_facts
from ._render import find_session, plural

__all__ = ["COMMANDS", "HEADER_KEY", "inside", "local_path", "record_from_json", "record_to_json"]

HEADER_KEY = "lance_context_export"
FORMAT_VERSION = 1
_PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("run_id", pa.string()),
        ("role", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("content_type", pa.string()),
        ("text", pa.large_string()),
        ("binary", pa.large_binary()),
        ("metadata", pa.large_string()),
        ("state_metadata", pa.large_string()),
        ("relationships", pa.large_string()),
        ("embedding", pa.list_(pa.float32())),
        ("search_text", pa.large_string()),
        ("embed_text", pa.large_string()),
    ]
)


def local_path(uri: str) -> Path | None:
    """The local path ``uri`` names (``file://`` taken off), or None for an object store's URI."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return None if "://" in uri else Path(uri)


def inside(path: Path, root: str) -> bool:
    """Whether ``path`` is under the local store at ``root`` (False for an object store)."""
    base = local_path(root)
    if base is None:
        return False
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base))


def record_to_json(record: ContextRecord, embeddings: bool = True) -> dict[str, Any]:
    """One record as a JSON-able dict (the JSON Lines row).

    ``search_text`` and ``embed_text`` (what a chat adapter indexed and embedded beside the
    message: its speaker, date and earlier turns) are null where they are the text itself.
    """
    search = record.search_text
    return {
        "id": record.id,
        "run_id": record.run_id,
        "role": record.role,
        "created_at": record.created_at.isoformat(),
        "content_type": record.content_type,
        "text": record.text_payload,
        "binary": None if record.binary_payload is None else base64.b64encode(record.binary_payload).decode(),
        "metadata": record.metadata,
        "state_metadata": None if record.state_metadata is None else asdict(record.state_metadata),
        "relationships": [asdict(r) for r in record.relationships],
        "embedding": None
        if record.embedding is None or not embeddings
        else [float(x) for x in record.embedding],
        "search_text": None if search == record.text_payload else search,
        "embed_text": record.embed_text,
    }


def record_from_json(row: dict[str, Any], embeddings: bool = True) -> ContextRecord:
    """The record a JSON Lines row (or a Parquet row, decoded the same way) describes."""
    created = row["created_at"]
    binary = row.get("binary")
    state = row.get("state_metadata")
    vector = row.get("embedding") if embeddings else None
    return ContextRecord(
        id=row["id"],
        run_id=row["run_id"],
        role=row["role"],
        created_at=created if isinstance(created, datetime) else datetime.fromisoformat(created),
        content_type=row["content_type"],
        text_payload=row.get("text"),
        binary_payload=base64.b64decode(binary) if isinstance(binary, str) else binary,
        state_metadata=None if state is None else StateMetadata(**state),
        metadata=row.get("metadata") or {},
        relationships=[Relationship(**r) for r in row.get("relationships") or []],
        embedding=None if vector is None else np.asarray(vector, dtype=np.float32),
        search_text=row.get("search_text"),
        embed_text=row.get("embed_text"),
    )


def _parquet_table(rows: Sequence[dict[str, Any]], header: dict[str, Any]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in _PARQUET_SCHEMA.names}
    for row in rows:
        for name in columns:
            value = row[name]
            if name == "binary" and value is not None:
                value = base64.b64decode(value)
            elif name in ("metadata", "state_metadata", "relationships") and value is not None:
                value = json.dumps(value, ensure_ascii=False)
            elif name == "created_at":
                value = datetime.fromisoformat(value)
            columns[name].append(value)
    table = pa.table(columns, schema=_PARQUET_SCHEMA)
    return table.replace_schema_metadata({HEADER_KEY: json.dumps(header)})


@contextmanager
def _progress(total: int, label: str) -> Iterator[Any]:
    """A progress bar on stderr (none when stderr is not a terminal); yields ``advance(n)``."""
    err = err_console()
    if not err.is_terminal:
        yield lambda n: None
        return
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _selected(view: Any, sessions: Sequence[str], prefix: str | None) -> list[ContextRecord]:
    if sessions:
        run_ids = view.store.run_ids()
        # a session named twice (or by its key and its run id) is exported once
        chosen = dict.fromkeys(find_session(run_ids, name) for name in sessions)
        return [r for run_id in chosen for r in view.store.records(run_id, index_text=True)]
    if prefix:
        found = list(view.store.records(where={"run_id": {"$prefix": prefix}}, index_text=True))
        if not found:
            raise click.ClickException(
                f"no session's run id starts with {prefix!r} in {view.ref} "
                "(lance-context sessions URI lists them); nothing was written"
            )
        return found
    return list(view.store.records(index_text=True))


def _destination(given: str, uri: str, force: bool) -> Path:
    """The local file an export writes, checked before anything is read or written."""
    destination = local_path(given)
    if destination is None:
        raise click.UsageError(
            f"export writes a local file, not {given}: export here and copy the file, "
            "or write a store there with lance-context snapshot"
        )
    if destination.is_dir():
        raise click.UsageError(f"{destination} is a folder: give the file to write, such as trip.jsonl")
    if destination.exists() and not force:
        raise click.UsageError(f"{destination} exists; pass --force to overwrite it")
    if not destination.parent.is_dir():
        raise click.UsageError(f"the folder {destination.parent} does not exist")
    if inside(destination, uri):
        raise click.UsageError(
            f"{destination} is inside the store's folder, whose files cleanup and forget treat as "
            "the store's: export to a file outside it"
        )
    return destination


@click.command("export")
@store_arguments()
@click.argument("destination")
@version_options
@click.option(
    "--session", "-s", "sessions", multiple=True, metavar="SESSION", help="Only this session; repeatable."
)
@click.option("--prefix", "-p", metavar="TEXT", help="Only sessions whose run id starts with TEXT.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "parquet"]),
    help="Default: from the file name (.parquet or .pq: Parquet; .jsonl, .ndjson or .json: JSON Lines).",
)
@click.option(
    "--no-embeddings",
    is_flag=True,
    help="Leave vectors out (an import embeds again, with the recorded embedder).",
)
@click.option("--force", "-f", is_flag=True, help="Overwrite DESTINATION if it exists.")
def export(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    destination: str,
    version: int | None,
    tag: str | None,
    sessions: tuple[str, ...],
    prefix: str | None,
    fmt: str | None,
    no_embeddings: bool,
    force: bool,
) -> None:
    """Write a session, a version or the whole store to JSON Lines or Parquet.

    DESTINATION - writes JSON Lines to standard output.
    """
    if sessions and prefix is not None:
        raise click.UsageError("give --session or --prefix, not both")
    if version is not None and version < 1:
        raise click.BadParameter(f"versions are numbered from 1, got {version}", param_hint="--version")
    to_stdout = destination == "-"
    if to_stdout and fmt == "parquet":
        raise click.UsageError("standard output (-) takes JSON Lines: write Parquet to a file")
    path = Path("-") if to_stdout else _destination(destination, uri, force)
    suffix = path.suffix.lower()
    if to_stdout:
        fmt = "jsonl"
    elif fmt is None and suffix in (".parquet", ".pq"):
        fmt = "parquet"
    elif fmt is None and suffix in (".jsonl", ".ndjson", ".json"):
        fmt = "jsonl"
    elif fmt is None:
        raise click.UsageError(
            f"cannot tell the format from {path.name!r}: name the file .jsonl or .parquet, or pass --format"
        )
    view = as_of(spec_from(uri, storage_options, branch), version, tag)
    records = _selected(view, sessions, prefix)
    facts = store_facts(view)
    header = {
        HEADER_KEY: FORMAT_VERSION,
        "source": view.spec.uri,
        "branch": view.branch,
        "version": view.version,
        "records": len(records),
        "embedder": facts.embedder,  # an import without the vectors embeds again with it
        "dimension": facts.dimension,
        "vectors": not no_embeddings,
    }
    rows = []
    with _progress(len(records), "exporting") as advance:
        for record in records:
            rows.append(record_to_json(record, not no_embeddings))
            advance(1)
    if to_stdout:  # the header, then one record per line; the summary goes to stderr
        for row in [header, *rows]:
            click.echo(json.dumps(row, ensure_ascii=False))
        click.echo(f"exported {plural(len(records), 'record')} of {view.ref} (jsonl)", err=True)
        return
    partial = path.with_name(path.name + ".partial")
    try:
        if fmt == "parquet":
            pq.write_table(_parquet_table(rows, header), partial)
        else:
            with partial.open("w", encoding="utf-8") as out:
                out.write(json.dumps(header) + "\n")
                for row in rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # a failed write leaves no half-written file behind
    click.echo(f"exported {plural(len(records), 'record')} of {view.ref} to {path} ({fmt})")


COMMANDS = [export]
