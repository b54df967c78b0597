"""Governing a store over time: ``forget``, ``snapshot`` and ``import-snapshot``.

``forget`` erases records from every version, branch and file and prints the
verification; it shows what it will erase and expire, and asks first (or takes
``--yes``). ``snapshot`` writes a self-contained copy of a version (or of main's history
from a version on) to another path or bucket; ``import-snapshot`` brings one back, as a
copy where nothing is or merged into a store as one version. Retention is an option of
``cleanup`` (``_maintain``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import click

from lance_context import ContextStore, ForgetReport

from ._common import a_place, confirm, emit_json, spec_from, store_arguments, whole_number, working
from ._conversation import human_bytes
from ._ops import tag_home, version_of
from ._refs import MAIN, NoStore, NotFound, StoreSpec, store_tags
from ._render import find_session, plural
from ._transfer import inside, local_path

__all__ = ["COMMANDS", "spans"]


def spans(versions: Iterable[int]) -> str:
    """``7-18, 21``: version numbers as runs."""
    runs: list[list[int]] = []
    for version in sorted(versions):
        if runs and version == runs[-1][-1] + 1:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs) or "none"


def _options(values: Sequence[str], flag: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item.split('=')[0]!r}…", param_hint=flag)
        options[key.strip()] = value
    return options


def _report_json(report: ForgetReport) -> dict[str, Any]:
    check = report.verification
    return {
        "dry_run": report.dry_run,
        "records": report.records,
        "record_ids": list(report.record_ids),
        "rows": report.rows,
        "versions_written": {b: list(v) for b, v in report.versions_written.items()},
        "versions_expired": {b: list(v) for b, v in report.versions_expired.items()},
        "tags_removed": {t: {"branch": b, "version": v} for t, (b, v) in report.tags_removed.items()},
        "files_deleted": report.files_deleted,
        "bytes_deleted": report.bytes_deleted,
        "verification": None if check is None else {**check.__dict__, "ok": check.ok},
    }


def _print_report(report: ForgetReport) -> None:
    expired = "; ".join(f"{b} {spans(v)}" for b, v in report.versions_expired.items() if v) or "none"
    tags = ", ".join(f"{t} ({b}@{v})" for t, (b, v) in report.tags_removed.items())
    verb = "would erase" if report.dry_run else "erased"
    click.echo(f"{verb} {plural(report.records, 'record')} ({plural(report.rows, 'stored copy')})")
    click.echo(f"versions {'to expire' if report.dry_run else 'expired'}: {expired}")
    if tags:
        click.echo(f"tags {'to remove' if report.dry_run else 'removed'}: {tags}")
    check = report.verification
    if report.dry_run or check is None:
        return
    written = "; ".join(f"{b} {spans(v)}" for b, v in report.versions_written.items())
    click.echo(f"versions written: {written}")
    click.echo(f"deleted {plural(report.files_deleted, 'file')} ({human_bytes(report.bytes_deleted)})")
    click.echo(
        f"verification: scanned {plural(check.files_scanned, 'file')} ({human_bytes(check.bytes_scanned)}), "
        f"{plural(check.data_files_decoded, 'data file')} row by row; "
        f"{plural(check.payloads_checked, 'payload')} searched, "
        f"{check.payloads_shared} also held by kept records"
    )
    for path in check.leftovers_deleted:
        click.echo(f"  deleted leftover {path}")
    for leak in check.leaks:
        click.echo(f"  FOUND {leak}")
    click.echo("verified: no trace of the erased records remains" if check.ok else "NOT VERIFIED")


@click.command()
@store_arguments(branch=False)
@click.option("--session", "-s", "sessions", multiple=True, metavar="SESSION", help="A session; repeatable.")
@click.option("--id", "ids", multiple=True, metavar="ID", help="A record id; repeatable.")
@click.option("--where", "-w", metavar="JSON", help='A filter, such as \'{"role": "tool"}\'.')
@click.option("--dry-run", is_flag=True, help="Show what would be erased and expired; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def forget(
    uri: str,
    storage_options: tuple[str, ...],
    sessions: tuple[str, ...],
    ids: tuple[str, ...],
    where: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Erase records from every version, branch and file (all conditions given must match)."""
    if not (sessions or ids or where):
        raise click.UsageError("say what to forget: --session, --id or --where")
    spec = spec_from(uri, storage_options)
    store = _writable(spec)
    run_ids = (
        sorted({r for b in store.branches() for r in spec.open_read(branch=b).run_ids()}) if sessions else []
    )
    chosen = list(dict.fromkeys(_session(store, run_ids, name) for name in sessions))
    filters: dict[str, Any] = {} if not where else _where(where)
    unknown = [
        name for name in chosen if name not in run_ids and not store.forget(run_id=name, dry_run=True).records
    ]
    if unknown and len(unknown) < len(chosen):  # erasing the others would look like erasing all
        raise click.ClickException(
            f"no records of {_sessions(unknown)} in any version or branch "
            "(lance-context sessions URI lists them); nothing was changed"
        )
    if len(chosen) > 1:
        filters = {"$and": [filters, {"run_id": {"$in": chosen}}]} if filters else {"run_id": {"$in": chosen}}
    run_id = chosen[0] if len(chosen) == 1 else None
    plan = store.forget(list(ids) or None, run_id=run_id, where=filters or None, dry_run=True)
    if dry_run or plan.records == 0:
        emit_json(_report_json(plan)) if as_json else _print_report(plan)
        if plan.records == 0 and not as_json and unknown:
            click.echo(
                f"no records of {_sessions(unknown)} in any version or branch; an "
                "adapter's session is named by its key or its full run id (lance-context sessions URI); "
                "nothing was changed"
            )
        elif plan.records == 0 and not as_json:
            click.echo("nothing matched; nothing was changed")
        return
    expiring = sum(len(v) for v in plan.versions_expired.values())
    named = f" of session {', '.join(repr(n) for n in chosen)}" if chosen else ""
    confirm(
        f"Erase {plural(plan.records, 'record')}{named} from every version and file, removing "
        f"{plural(expiring, 'version')} that held them"
        + (f" and {plural(len(plan.tags_removed), 'tag')}" if plan.tags_removed else "")
        + "? This cannot be undone.",
        yes,
    )
    with working("forgetting…"):
        report = store.forget(list(ids) or None, run_id=run_id, where=filters or None)
    emit_json(_report_json(report)) if as_json else _print_report(report)
    if not report.verified:
        raise click.ClickException("verification found traces of the erased records (listed above)")


def _sessions(names: Sequence[str]) -> str:
    """``session 'a'`` or ``sessions 'a', 'b'``."""
    return ("session " if len(names) == 1 else "sessions ") + ", ".join(repr(n) for n in names)


def _writable(spec: StoreSpec) -> ContextStore:
    spec.open_read()  # refuse to create a store where there is none
    return spec.open_write()


def _session(store: ContextStore, run_ids: list[str], name: str) -> str:
    """The run id a --session names: looked up on every branch's latest version.

    A session that only older versions hold is forgotten by its full run id, which
    ``--session`` then takes as it is, before any adapter key that reads the same.
    """
    if name not in run_ids and store.forget(run_id=name, dry_run=True).records:
        return name  # the full run id of a session only older versions hold
    try:
        return find_session(run_ids, name)
    except NotFound as exc:
        if "several sessions" in str(exc):
            raise
        return name  # a session only older versions hold: by its full run id


def _where(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--where") from exc
    if not isinstance(value, dict):
        raise click.BadParameter("a filter is a JSON object", param_hint="--where")
    if not value or value in ({"$and": []}, {"$or": []}):
        raise click.BadParameter(
            f'{text.strip()} puts no condition on any field: name one, such as \'{{"role": "tool"}}\'',
            param_hint="--where",
        )
    return value


@click.command()
@store_arguments()
@click.argument("destination", callback=a_place)
@click.option(
    "--version",
    "-V",
    "version",
    type=whole_number(1),
    metavar="N",
    help="Export version N (default: latest).",
)
@click.option("--tag", "-t", metavar="NAME", help="Export the version this tag names.")
@click.option("--history", is_flag=True, help="Also copy every later version of main, with their tags.")
@click.option("--dest-option", "-O", "dest_options", multiple=True, metavar="KEY=VALUE",
              help="Object-store setting of DESTINATION; repeatable.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def snapshot(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    destination: str,
    version: int | None,
    tag: str | None,
    history: bool,
    dest_options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write a version as a self-contained store at DESTINATION (a path or s3://bucket/prefix)."""
    if version is not None and tag is not None:
        raise click.UsageError("give --version or --tag, not both")
    if history and branch != MAIN:
        raise click.UsageError(
            f"--history copies main's versions; a branch's version is exported alone (leave out --history "
            f"to export {branch!r}, or --branch to export main's history)"
        )
    if version is not None and version >= 2**63:  # beyond any version Lance can number
        raise NotFound(f"version {version} does not exist")
    _check_destination(destination, uri)
    spec = spec_from(uri, storage_options, branch)
    if tag is not None and branch != MAIN:  # a tag on another branch: say so, as tag and branch do
        tag_home(spec, tag, store_tags(spec), follow=False)
    store = spec.open_read(branch)
    with working("writing the snapshot…"):
        report = store.export(
            destination, version=version, tag=tag, history=history,
            storage_options=_options(dest_options, "--dest-option"),
        )  # fmt: skip
    if as_json:
        emit_json(report.__dict__)
        return
    versions = ("versions " if len(report.versions) > 1 else "version ") + spans(report.versions)
    click.echo(
        f"wrote {report.branch}@{report.version} to {report.destination}: "
        f"{plural(report.records, 'record')}, {versions}, "
        f"{plural(report.files, 'file')} ({human_bytes(report.bytes)})"
    )


def _check_destination(destination: str, uri: str) -> None:
    """Refuse a local DESTINATION that already holds something or lies inside the store."""
    path = local_path(destination)
    if path is None:
        return  # an object store: the core refuses a prefix that holds a store
    if path.is_file():
        raise click.UsageError(
            f"{destination} is a file: a snapshot is a new store, give a path where nothing is"
        )
    if path.is_dir() and any(path.iterdir()):
        held = "a store" if (path / "_versions").is_dir() else "files"
        raise click.UsageError(
            f"{destination} already holds {held}: a snapshot is a new store, give a path where nothing is "
            "(import-snapshot merges a snapshot into a store)"
        )
    if inside(path, uri):
        raise click.UsageError(
            f"{destination} is inside the store's folder, whose files cleanup and forget treat as the "
            "store's: give a path outside it"
        )


def _same_place(a: str, b: str) -> bool:
    """Whether two URIs name the same local folder (or the same object-store prefix)."""
    path_a, path_b = local_path(a), local_path(b)
    if path_a is None or path_b is None:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(path_a) == os.path.realpath(path_b)


@click.command("import-snapshot")
@store_arguments(branch=False)
@click.argument("source", callback=a_place)
@click.option(
    "--version",
    "-V",
    "at",
    metavar="N|TAG",
    help="Only this version of SOURCE (default: all its versions when copying, its latest when merging).",
)
@click.option("--source-option", "-O", "source_options", multiple=True, metavar="KEY=VALUE",
              help="Object-store setting of SOURCE; repeatable.")  # fmt: skip
@click.option("--yes", "-y", is_flag=True, help="Do not ask before merging into an existing store.")
def import_snapshot(
    uri: str,
    storage_options: tuple[str, ...],
    source: str,
    at: str | None,
    source_options: tuple[str, ...],
    yes: bool,
) -> None:
    """Copy a snapshot to URI, or merge its records into the store at URI as one version."""
    spec = spec_from(uri, storage_options)
    from_options = _options(source_options, "--source-option")
    version = version_of(at)  # refuses 0 and negative numbers
    if isinstance(version, int) and version >= 2**63:  # beyond any version Lance can number
        raise NotFound(f"version {version} does not exist")
    if _same_place(uri, source):
        raise click.UsageError(
            f"{source} and {uri} are the same store: give a snapshot written by lance-context snapshot"
        )
    if (path := local_path(uri)) is not None and inside(path, source):
        raise click.UsageError(f"{uri} is inside the snapshot's folder: give a path outside {source}")
    # refuse a SOURCE that holds no store before asking anything
    source_spec = StoreSpec(source, from_options or {}, encryption=spec.encryption)
    source_spec.open_read()
    try:
        spec.open_read()
        exists = True
    except NoStore:  # nothing at URI: the snapshot is copied there
        exists = False
    # one key for both (a snapshot of this store, or of one sharing its key), used where sealed
    sealed = source_spec.encrypted() if not exists else spec.encrypted()
    if exists:
        confirm(f"Merge the records of {source} into {uri} as one new version (same ids are replaced)?", yes)
    with working("importing…"):
        store = ContextStore.import_(
            source, uri, version=version, storage_options=dict(spec.storage_options) or None,
            source_storage_options=from_options or None,
            encryption=spec.encryption if sealed else None,
            source_encryption=spec.encryption if source_spec.encrypted() else None,
        )  # fmt: skip
    now = f"now {plural(store.count(), 'record')} at version {store.version()}"
    if exists:
        click.echo(f"merged into {uri}: {now}")
        return
    held = [info.version for info in store.versions()]
    click.echo(f"copied to {uri}: {'versions' if len(held) > 1 else 'version'} {spans(held)}, {now}")


COMMANDS = [forget, snapshot, import_snapshot]
