"""``import``: the records of an export (JSON Lines or Parquet, see ``_transfer``) into a store.

Every record is written in one commit, so an import is one new version; records whose
ids already exist are replaced in their place (after a confirmation). A store the command creates and
cannot write into is removed again: a failed import leaves nothing behind.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
import lance
import pyarrow.parquet as pq

from lance_context import ContextStore, EmbeddingError, HashingEmbedder, SentenceTransformerEmbedder

from ._common import confirm, spec_from, store_arguments, working
from ._maintain import parse_embedder
from ._refs import NoStore, StoreSpec
from ._transfer import HEADER_KEY, local_path, record_from_json

__all__ = ["COMMANDS", "read_export"]


def read_export(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and rows of an export file (JSON Lines or Parquet, told apart by content)."""
    with path.open("rb") as raw:
        parquet = raw.read(4) == b"PAR1"
    if parquet:
        table = pq.read_table(path)
        header = json.loads((table.schema.metadata or {}).get(HEADER_KEY.encode(), b"{}"))
        if HEADER_KEY not in header:  # another program's Parquet: its columns may be anything
            return header, []
        rows = table.to_pylist()
        for row in rows:
            for name in ("metadata", "state_metadata", "relationships"):
                row[name] = None if row[name] is None else json.loads(row[name])
        return header, rows
    found: dict[str, Any] = {}
    rows = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                if not (found or rows):  # not even the header: some other file
                    raise click.ClickException(
                        f"{path} is not a lance-context export (neither JSON Lines nor Parquet)"
                    ) from exc
                raise click.ClickException(f"{path} line {number} is not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise click.ClickException(f"{path} line {number} is not a JSON object")
            if HEADER_KEY in row:
                found = row
            else:
                rows.append(row)
    return found, rows


def _source(given: str) -> Path:
    """The export file an import reads (a path or a ``file://`` URI), checked."""
    path = local_path(given)
    if path is None:
        raise click.BadParameter(
            f"{given} is not a local file: copy the export here first", param_hint="'SOURCE'"
        )
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder, not an export file", param_hint="'SOURCE'")
    if not path.exists():
        raise click.BadParameter(f"{path} does not exist", param_hint="'SOURCE'")
    return path


def _recorded_embedder(header: dict[str, Any]) -> Any:
    name, dimension = header.get("embedder"), header.get("dimension")
    if name == "hashing" and dimension:
        return HashingEmbedder(int(dimension))
    if isinstance(name, str) and name.startswith("sentence-transformers/"):
        return SentenceTransformerEmbedder(name)
    return None


def _open_target(spec: StoreSpec, header: dict[str, Any], embedder: str | None) -> tuple[ContextStore, bool]:
    """The store to import into, and whether this command created it."""
    chosen = None if embedder is None else parse_embedder(embedder)
    try:
        spec.open_read()
    except NoStore:  # no store yet: create it with the exported (or given) embedder
        if spec.branch != "main":
            raise click.ClickException(
                f"no store at {spec.uri} yet, so no branch {spec.branch!r}: a new store has only 'main' "
                "(leave out --branch); nothing was written"
            ) from None
        chosen = chosen if embedder is not None else _recorded_embedder(header)
        created = ContextStore.open(
            spec.uri,
            storage_options=dict(spec.storage_options) or None,
            embedder=chosen,
            dimension=None if chosen else header.get("dimension"),
            encryption=spec.encryption,  # given a key, the new store is sealed with it
        )
        return created, True
    from lance_context import DEFAULT_EMBEDDER

    return spec.open_write(embedder=DEFAULT_EMBEDDER if embedder is None else chosen), False


@click.command("import")
@store_arguments()
@click.argument("source")
@click.option(
    "--embedder", "-e", metavar="NAME", help="Embedder for a new store (default: the exported one)."
)
@click.option("--drop-embeddings", is_flag=True, help="Ignore exported vectors; the store embeds again.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before replacing records with the same ids.")
def import_(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    source: str,
    embedder: str | None,
    drop_embeddings: bool,
    yes: bool,
) -> None:
    """Write the records of an export into a store (created if missing), as one new version."""
    path = _source(source)
    header, rows = read_export(path)
    if HEADER_KEY not in header:
        raise click.ClickException(f"{path} is not a lance-context export (it has no header)")
    records = []
    for number, row in enumerate(rows, start=1):
        try:
            records.append(record_from_json(row, not drop_embeddings))
        except (KeyError, TypeError, ValueError) as exc:
            what = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            raise click.ClickException(f"{path} record {number}: {what}") from exc
    if not records:
        raise click.ClickException(f"{path} holds no records")
    twice = next((id_ for id_, n in Counter(r.id for r in records).items() if n > 1), None)
    if twice is not None:
        raise click.ClickException(f"{path} holds record {twice!r} more than once; nothing was written")
    sizes = {len(r.embedding) for r in records if r.embedding is not None}
    chosen = None if embedder is None else parse_embedder(embedder)
    if chosen is not None and sizes and sizes != {chosen.dimension}:
        raise click.ClickException(
            f"the exported vectors have {', '.join(map(str, sorted(sizes)))} dimensions and {embedder} makes "
            f"{chosen.dimension}; pass --drop-embeddings to embed the records again (nothing was written)"
        )
    spec = spec_from(uri, storage_options, branch)
    store, created = _open_target(spec, header, embedder)
    existing = [] if created else store.get_many([r.id for r in records])
    if existing:
        confirm(
            f"{len(existing):,} of the {len(records):,} records already exist and will be replaced. Go on?",
            yes,
        )
    try:
        with working(f"writing {len(records):,} records…"):
            # a replaced record keeps its place in its session, as import-snapshot keeps it
            version = store.upsert(records, keep_order=True) if existing else store.add(records)
    except BaseException as exc:
        if created:  # the empty store this command made goes with the failed write
            lance.LanceDataset.drop(spec.uri, storage_options=dict(spec.storage_options) or None)
        if isinstance(exc, EmbeddingError):
            raise click.ClickException(
                f"{exc}; pass --drop-embeddings to embed the records again (nothing was written)"
            ) from exc
        raise
    click.echo(f"imported {len(records):,} records into {spec.uri} ({branch}) as version {version}")


COMMANDS = [import_]
