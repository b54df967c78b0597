"""The store's own operations: ``tag``, ``branch``, ``restore``, ``compact``, ``cleanup``, ``reembed``.

Each writes at most one thing and says what it did. Steps that delete or rewrite
(deleting a tag or branch, restore, cleanup, reembed) ask first, or take ``--yes``.
Without NAME, ``tag`` and ``branch`` list what exists (reading only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import click

from lance_context import (
    DEFAULT_EMBEDDER,
    ContextStore,
    HashingEmbedder,
    RetentionPolicy,
    SentenceTransformerEmbedder,
)

from ._common import (
    confirm,
    console,
    emit_json,
    err_console,
    json_option,
    parse_duration,
    spec_from,
    store_arguments,
    styled,
    when,
)
from ._conversation import human_bytes
from ._facts import all_tags, store_facts
from ._refs import NotFound, StoreSpec, open_view
from ._render import find_session, plural

__all__ = ["COMMANDS", "parse_embedder", "parse_retention"]


def parse_embedder(text: str) -> Any:
    """An embedder from its command-line name.

    ``hashing`` or ``hashing:DIM`` (deterministic, offline), ``none``, or a
    sentence-transformers model (``sentence-transformers/all-MiniLM-L6-v2``,
    ``st:all-MiniLM-L6-v2``).
    """
    name, _, arg = text.partition(":")
    if name == "hashing":
        if arg and not arg.isdigit():
            raise click.BadParameter(
                f"hashing:{arg}: the dimension must be a number", param_hint="--embedder"
            )
        return HashingEmbedder(int(arg) if arg else 64)
    if text == "none":
        return None
    if name == "st" and arg:
        return SentenceTransformerEmbedder(arg)
    if text.startswith("sentence-transformers/"):
        return SentenceTransformerEmbedder(text)
    raise click.BadParameter(
        f"unknown embedder {text!r}: use hashing[:DIM], st:MODEL or sentence-transformers/MODEL",
        param_hint="--embedder",
    )


@contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on stderr while a long step runs (silent when stderr is not a terminal)."""
    err = err_console()
    if not err.is_terminal:
        yield
        return
    with err.status(message):
        yield


def _writable(spec: StoreSpec, embedder: Any = None) -> ContextStore:
    spec.open_read()  # refuse to create a store where there is none
    return spec.open_write(embedder=embedder)


def _version_of(ref: str | None) -> int | str | None:
    """A version number or a tag name, as given."""
    if ref is None:
        return None
    return int(ref) if ref.isdigit() else ref


@click.command()
@store_arguments()
@click.argument("name", required=False)
@click.option("--version", "-V", "at", metavar="N|TAG", help="The version to tag (default: the latest).")
@click.option("--delete", "-d", is_flag=True, help="Delete the tag NAME (the version stays).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")
@json_option
def tag(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    name: str | None,
    at: str | None,
    delete: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Name a version with a tag; without NAME, list the tags."""
    if name is None and (delete or at is not None):
        raise click.UsageError("name the tag to " + ("delete" if delete else "create"))
    spec = spec_from(uri, storage_options, branch)
    tags = all_tags(open_view(spec))
    if name is None:
        if as_json:
            emit_json({n: {"branch": b, "version": v} for n, (b, v) in tags.items()})
            return
        for tag_name, (tag_branch, version) in tags.items():
            console().print(styled(f"{tag_name}  {tag_branch}@{version}"))
        if not tags:
            console().print(styled("no tags", "dim"))
        return
    if delete:
        if name not in tags:
            raise NotFound(f"no tag named {name!r}")
        confirm(f"Delete tag {name!r} (it names {tags[name][0]}@{tags[name][1]})?", yes)
        _writable(StoreSpec(spec.uri, spec.storage_options, tags[name][0])).delete_tag(name)
        click.echo(f"deleted tag {name}")
        return
    if name in tags:
        raise click.UsageError(
            f"tag {name!r} already names {tags[name][0]}@{tags[name][1]}; delete it first (tag NAME --delete)"
        )
    store = _writable(spec)
    target = _version_of(at)
    store.tag(name, None if target is None else store.at_version(target).version())
    click.echo(f"tagged {branch}@{store.tags()[name]} as {name}")


@click.command()
@store_arguments()
@click.argument("name", required=False)
@click.option("--from", "source", metavar="N|TAG", help="The version to branch from (default: the latest).")
@click.option("--delete", "-d", is_flag=True, help="Delete the branch NAME and its versions.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting.")
@json_option
def branch(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    name: str | None,
    source: str | None,
    delete: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Create a branch from a version of --branch; without NAME, list the branches."""
    if name is None and (delete or source is not None):
        raise click.UsageError("name the branch to " + ("delete" if delete else "create"))
    spec = spec_from(uri, storage_options, branch)
    view = open_view(spec)
    parents = store_facts(view).branch_parents
    names = view.store.branches()
    if name is None:
        if as_json:
            emit_json(
                {
                    n: None if n not in parents else {"parent": parents[n][0], "version": parents[n][1]}
                    for n in names
                }
            )
            return
        for item in names:
            origin = f"  from {parents[item][0]}@{parents[item][1]}" if item in parents else ""
            console().print(styled(item + origin))
        return
    if delete:
        if name not in names or name == "main":
            raise NotFound(
                f"no branch named {name!r} to delete" + (" (main cannot be)" if name == "main" else "")
            )
        confirm(f"Delete branch {name!r} and every version on it?", yes)
        _writable(StoreSpec(spec.uri, spec.storage_options)).delete_branch(name)
        click.echo(f"deleted branch {name}")
        return
    if name in names:
        raise click.UsageError(f"a branch named {name!r} already exists")
    store = _writable(spec)
    store.branch(name, _version_of(source))
    parent = store_facts(open_view(spec)).branch_parents.get(name, (branch, store.version()))
    click.echo(f"created branch {name} from {parent[0]}@{parent[1]}")


@click.command()
@store_arguments()
@click.argument("version")
@click.option(
    "--session", "-s", metavar="SESSION", help="Only this session goes back; the others keep theirs."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
def restore(
    uri: str, storage_options: tuple[str, ...], branch: str, version: str, session: str | None, yes: bool
) -> None:
    """Make VERSION (a number or tag) the latest again, as a new version; history is kept."""
    spec = spec_from(uri, storage_options, branch)
    # one session's records are written again: a record from before a reembed() is embedded anew
    store = _writable(spec, DEFAULT_EMBEDDER if session is not None else None)
    then = store.at_version(int(version) if version.isdigit() else version)
    target, latest = then.version(), store.version()
    if session is None:
        confirm(
            f"Make {branch}@{target} the latest version of {branch} (now {latest})? "
            "Later versions stay in history.",
            yes,
        )
        click.echo(f"restored {branch}@{target} as version {store.restore(target)}")
        return
    run_id = find_session(sorted({*store.run_ids(), *then.run_ids()}), session)
    confirm(
        f"Make session {run_id} what it was at {branch}@{target} ({plural(then.count(run_id), 'record')}; "
        f"now {store.count(run_id)})? Other sessions keep theirs; history is kept.",
        yes,
    )
    new = store.restore(target, run_id=run_id)
    click.echo(f"restored session {run_id} as of {branch}@{target} as version {new}")


@click.command()
@store_arguments()
@json_option
def compact(uri: str, storage_options: tuple[str, ...], branch: str, as_json: bool) -> None:
    """Merge small fragments and refresh indexes (a new version; every version stays readable)."""
    spec = spec_from(uri, storage_options, branch)
    before = store_facts(open_view(spec)).fragments
    store = _writable(spec)
    with working("compacting…"):
        store.compact()
    after = store_facts(open_view(spec)).fragments
    if as_json:
        emit_json({"fragments_before": before, "fragments_after": after, "version": store.version()})
        return
    click.echo(f"compacted {plural(before, 'fragment')} into {after}; now at version {store.version()}")


def parse_retention(text: str) -> RetentionPolicy:
    """A retention policy from ``default`` or ``all=7d,hourly=30d,daily=1y``.

    ``hourly=none`` drops the hourly tier; ``daily=forever`` keeps one version a day
    without limit, ``daily=none`` keeps nothing older than the hourly tier. Parts not
    given keep ``RetentionPolicy``'s defaults.
    """
    if text.strip() == "default":
        return RetentionPolicy()
    given: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in ("all", "hourly", "daily"):
            raise click.BadParameter(
                f"{part.strip()!r}: use default, or all=AGE,hourly=AGE,daily=AGE", param_hint="--retention"
            )
        given[name] = value.strip()
    defaults = RetentionPolicy()
    keep_all = parse_duration(given["all"], "--retention") if "all" in given else defaults.keep_all
    hourly = given.get("hourly")
    hourly_age = (
        defaults.hourly
        if hourly is None
        else None
        if hourly == "none"
        else parse_duration(hourly, "--retention")
    )
    daily = given.get("daily", "forever")
    floor = hourly_age if hourly_age is not None else keep_all
    daily_age = (
        None if daily == "forever" else floor if daily == "none" else parse_duration(daily, "--retention")
    )
    try:
        return RetentionPolicy(keep_all=keep_all, hourly=hourly_age, daily=daily_age)
    except ValueError as exc:  # in the option's own words: all=, not keep_all
        raise click.BadParameter(str(exc).replace("keep_all", "all"), param_hint="--retention") from exc


def _retention(spec: StoreSpec, policy: RetentionPolicy, yes: bool, as_json: bool) -> None:
    store = _writable(spec)
    doomed = store.apply_retention(policy, dry_run=True).removed
    total = sum(len(v) for v in doomed.values())
    if total:
        counts = "; ".join(f"{name} {len(doomed[name])}" for name in store.branches() if doomed.get(name))
        confirm(f"Delete the files of {plural(total, 'version')} the retention policy does not keep "
                f"({counts})? Time travel to them ends.", yes)  # fmt: skip
    with working("applying the retention policy…"):
        report = store.apply_retention(policy)
    if as_json:
        emit_json({"removed": report.removed, "kept": report.kept, "tags_removed": report.tags_removed,
                   "bytes_removed": report.bytes_removed, "files_removed": report.files_removed})  # fmt: skip
        return
    kept = ", ".join(f"{name} {count}" for name, count in report.kept.items())
    click.echo(
        f"removed {plural(report.versions_removed, 'version')}, {human_bytes(report.bytes_removed)} freed; "
        f"versions kept: {kept}"
    )


@click.command()
@store_arguments(branch=False)
@click.option("--older-than", metavar="AGE", help="Delete versions older than AGE (30m, 12h, 7d).")
@click.option(
    "--retention",
    metavar="POLICY",
    help="Keep versions by age instead: 'default' or all=7d,hourly=30d,daily=1y (see README).",
)
@click.option(
    "--keep-versions",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --older-than: also keep the newest N versions.",
)
@click.option("--include-tagged", is_flag=True, help="Also delete tagged versions (their tags go too).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
@json_option
def cleanup(
    uri: str,
    storage_options: tuple[str, ...],
    older_than: str | None,
    retention: str | None,
    keep_versions: int | None,
    include_tagged: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete the files of old versions: time travel to them ends, disk space comes back."""
    if (older_than is None) == (retention is None):
        raise click.UsageError("give --older-than AGE or --retention POLICY (one of them)")
    if retention is not None and keep_versions is not None:
        raise click.UsageError(
            "--keep-versions goes with --older-than; a retention policy keeps versions by age"
        )
    spec = spec_from(uri, storage_options)
    if retention is not None:
        policy = parse_retention(retention)
        if include_tagged:
            policy = dataclasses.replace(policy, keep_tagged=False)
        _retention(spec, policy, yes, as_json)
        return
    assert older_than is not None
    age = parse_duration(older_than, "--older-than")
    view = open_view(spec)
    cutoff = datetime.now(timezone.utc) - age
    old = [v for v in view.store.versions() if v.timestamp < cutoff and v.version != view.version]
    tagged = [v for v in old if v.tags]
    doomed = len(old) - (0 if include_tagged else len(tagged))
    confirm(
        f"Delete the files of up to {plural(doomed, 'version')} older than {when(cutoff)} UTC"
        + (f" (keeping {len(tagged)} tagged)" if tagged and not include_tagged else "")
        + "? Time travel to them ends.",
        yes,
    )
    store = _writable(spec)
    with working("cleaning up…"):
        stats = store.cleanup(age, keep_tagged=not include_tagged, keep_versions=keep_versions)
    if as_json:
        emit_json(stats)
        return
    click.echo(
        f"removed {plural(stats['old_versions'], 'old version')}, {human_bytes(stats['bytes_removed'])} freed"
    )


@click.command()
@store_arguments()
@click.option(
    "--embedder",
    "-e",
    required=True,
    metavar="NAME",
    help="hashing[:DIM], st:MODEL or sentence-transformers/MODEL.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
def reembed(
    uri: str, storage_options: tuple[str, ...], branch: str, embedder: str, batch_size: int, yes: bool
) -> None:
    """Re-embed every record with another embedder, as one new version (old versions keep theirs)."""
    new = parse_embedder(embedder)
    if new is None:
        raise click.BadParameter("reembed needs an embedder, not none", param_hint="--embedder")
    spec = spec_from(uri, storage_options, branch)
    count = open_view(spec).store.count()
    confirm(
        f"Re-embed {count:,} records with {new.name} ({new.dimension} dimensions) and make it "
        "the store's embedder?",
        yes,
    )
    store = _writable(spec)
    version = store.reembed(new, batch_size=batch_size, progress=err_console().is_terminal)
    click.echo(f"re-embedded {count:,} records with {new.name}; now at version {version}")


COMMANDS = [tag, branch, restore, compact, cleanup, reembed]
