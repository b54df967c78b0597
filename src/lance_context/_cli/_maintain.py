"""Maintenance: ``compact``, ``cleanup`` (by age or a retention policy) and ``reembed``.

Each says what it did; ``cleanup`` and ``reembed`` ask first, or take ``--yes``, and
``cleanup`` asks nothing when no version is old enough to go.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import click

from lance_context import HashingEmbedder, RetentionPolicy, SentenceTransformerEmbedder

from ._common import (
    confirm,
    emit_json,
    err_console,
    json_option,
    parse_duration,
    spec_from,
    store_arguments,
    when,
    whole_number,
    working,
)
from ._conversation import human_bytes
from ._facts import recorded_embedder, store_facts
from ._ops import writable
from ._refs import StoreSpec, open_view
from ._render import plural

__all__ = ["COMMANDS", "parse_embedder", "parse_retention"]


def parse_embedder(text: str) -> Any:
    """An embedder from its command-line name.

    ``hashing`` or ``hashing:DIM`` (deterministic, offline), ``none``, or a
    sentence-transformers model (``sentence-transformers/all-MiniLM-L6-v2``,
    ``st:all-MiniLM-L6-v2``).
    """
    name, _, arg = text.partition(":")
    if name == "hashing":
        if arg and (not (arg.isascii() and arg.isdigit()) or int(arg) < 2):
            raise click.BadParameter(
                f"hashing:{arg}: the dimension must be a whole number of at least 2, such as hashing:64",
                param_hint="--embedder",
            )
        try:
            return HashingEmbedder(int(arg) if arg else 64)
        except ValueError as exc:  # too large
            raise click.BadParameter(f"hashing:{arg}: {exc}", param_hint="--embedder") from None
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


@click.command()
@store_arguments()
@json_option
def compact(uri: str, storage_options: tuple[str, ...], branch: str, as_json: bool) -> None:
    """Merge small fragments and refresh indexes (a new version; every version stays readable)."""
    spec = spec_from(uri, storage_options, branch)
    view = open_view(spec)
    before = store_facts(view).fragments
    store = writable(spec)
    with working("compacting…"):
        store.compact()
    after = store_facts(open_view(spec)).fragments
    if as_json:
        emit_json({"fragments_before": before, "fragments_after": after, "version": store.version()})
        return
    if store.version() == view.version:
        click.echo(f"nothing to compact ({plural(before, 'fragment')}); still version {view.version}")
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
    store = writable(spec)
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
    type=whole_number(1),
    metavar="N",
    help="With --older-than: also keep the newest N versions.",
)
@click.option("--include-tagged", is_flag=True, help="Also delete tagged versions (their tags go too).")
@click.option(
    "--unreferenced",
    is_flag=True,
    help="With --older-than: also delete files no version references, however new "
    "(left by writes that lost a race or were killed). Only while nothing else writes.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
@json_option
def cleanup(
    uri: str,
    storage_options: tuple[str, ...],
    older_than: str | None,
    retention: str | None,
    keep_versions: int | None,
    include_tagged: bool,
    unreferenced: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete the files of old versions: time travel to them ends, disk space comes back."""
    if (older_than is None) == (retention is None):
        raise click.UsageError("give --older-than AGE or --retention POLICY (one of them)")
    if retention is not None and (keep_versions is not None or unreferenced):
        raise click.UsageError(
            "--keep-versions and --unreferenced go with --older-than; "
            "a retention policy keeps versions by age"
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
    if keep_versions is not None:  # more than any store holds keeps them all (Lance counts in 64 bits)
        keep_versions = min(keep_versions, 2**63 - 1)
    view = open_view(spec)
    cutoff = datetime.now(timezone.utc) - age
    versions = sorted(view.store.versions(), key=lambda v: v.version)
    newest = {v.version for v in versions[-keep_versions:]} if keep_versions else set()
    old = [
        v for v in versions if v.timestamp < cutoff and v.version != view.version and v.version not in newest
    ]
    tagged = [v for v in old if v.tags]
    # only the tags of versions that go: a tag on a version kept (the latest, the newest N) stays
    untag = sorted(name for v in tagged for name in v.tags) if include_tagged else []
    doomed = len(old) - (0 if include_tagged else len(tagged))
    questions = []
    if doomed:  # nothing old enough: nothing to ask (Lance still removes week-old unnamed files)
        questions.append(
            f"Delete the files of up to {plural(doomed, 'version')} older than {when(cutoff)} UTC"
            + (f" (keeping {len(tagged)} tagged)" if tagged and not include_tagged else "")
            + (f" and {plural(len(untag), 'tag')} ({', '.join(untag)})" if untag else "")
            + "? Time travel to them ends."
        )
    if unreferenced:
        questions.append(
            ("Also delete" if doomed else "Delete")
            + " the files no version references, however new? Only while nothing else writes to "
            "this store: a write in progress would lose its files."
        )
    if questions:
        confirm(" ".join(questions), yes)
    store = writable(spec)
    with working("cleaning up…"):
        for name in untag:
            store.delete_tag(name)
        stats = store.cleanup(age, keep_tagged=True, keep_versions=keep_versions, unreferenced=unreferenced)
    if as_json:
        emit_json({**stats, "tags_removed": untag})
        return
    click.echo(
        f"removed {plural(stats['old_versions'], 'old version')}, {human_bytes(stats['bytes_removed'])} freed"
        + (f"; tags removed: {', '.join(untag)}" if untag else "")
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
@click.option("--batch-size", type=whole_number(1), default=256, show_default=True, metavar="N",
              help="Records embedded at a time.")  # fmt: skip
@click.option(
    "--force",
    is_flag=True,
    help="Re-embed even when the vectors already come from this embedder (its weights changed "
    "under the same name, or records were added without vectors).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
def reembed(
    uri: str,
    storage_options: tuple[str, ...],
    branch: str,
    embedder: str,
    batch_size: int,
    force: bool,
    yes: bool,
) -> None:
    """Re-embed every record with another embedder, as one new version (old versions keep theirs).

    With the embedder the store already records, nothing is written unless --force.
    """
    new = parse_embedder(embedder)
    if new is None:
        raise click.BadParameter("reembed needs an embedder, not none", param_hint="--embedder")
    spec = spec_from(uri, storage_options, branch)
    view = open_view(spec)
    recorded = recorded_embedder(view)
    # the name first: a model's dimension may need the model loaded
    if not force and recorded is not None and recorded[0] == new.name and recorded[1] == new.dimension:
        click.echo(
            f"the vectors of branch {view.branch} are already from {new.name} ({new.dimension} "
            "dimensions); nothing was written (--force re-embeds anyway)"
        )
        return
    count = view.store.count()
    confirm(
        f"Re-embed {plural(count, 'record')} with {new.name} ({new.dimension} dimensions) and make it "
        "the store's embedder?",
        yes,
    )
    store = writable(spec)
    version = store.reembed(new, batch_size=batch_size, progress=err_console().is_terminal)
    done = f"re-embedded {plural(count, 'record')} with {new.name} ({new.dimension} dimensions)"
    click.echo(f"{done} as version {version}")


COMMANDS = [compact, cleanup, reembed]
