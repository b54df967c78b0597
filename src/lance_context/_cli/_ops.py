"""Naming versions and going back: ``tag``, ``branch`` and ``restore``.

Each writes at most one thing and says what it did. Steps that delete or rewrite
(deleting a tag or branch, restore) ask first, or take ``--yes``. Without NAME,
``tag`` and ``branch`` list what exists (reading only). Maintenance (``compact``,
``cleanup``, ``reembed``) is in :mod:`._maintain`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lance_context import DEFAULT_EMBEDDER, ContextStore, EncryptionError, InvalidFilterError

from ._common import (
    confirm,
    console,
    emit_json,
    foreign_digits,
    json_option,
    safe,
    spec_from,
    store_arguments,
    styled,
)
from ._facts import all_tags, store_facts
from ._refs import MAIN, NotFound, StoreSpec, name_problem, open_view, store_tags
from ._render import find_session, plural

__all__ = ["COMMANDS", "tag_home", "version_of", "writable"]

T = TypeVar("T")


def writable(spec: StoreSpec, embedder: Any = None) -> ContextStore:
    """The store of ``spec`` opened for writing; refuses where no store is."""
    spec.open_read()  # refuse to create a store where there is none
    return spec.open_write(embedder=embedder)


def version_of(ref: str | None, param_hint: str = "--version") -> int | str | None:
    """A version number or a tag name, as given (``-3`` is neither: tags start with a letter or digit)."""
    if ref is None:
        return None
    if foreign_digits(ref):  # no tag can hold them (tag names are ASCII): a mistyped number
        raise click.BadParameter(f"{ref!r}: write version numbers with the digits 0-9", param_hint=param_hint)
    if re.fullmatch(r"\s*-\d+\s*", ref):
        raise click.BadParameter(f"versions are numbered from 1, got {ref.strip()}", param_hint=param_hint)
    if not (ref.strip().isascii() and ref.strip().isdigit()):
        return ref
    if int(ref) == 0:
        raise click.BadParameter(f"versions are numbered from 1, got {ref.strip()}", param_hint=param_hint)
    return int(ref)


def tag_home(
    spec: StoreSpec, ref: int | str | None, tags: dict[str, tuple[str, int]], follow: bool
) -> StoreSpec:
    """``spec`` on the branch whose tag ``ref`` is (``follow``: when --branch was left at main).

    A tag names one branch's version; another branch cannot reach it, so say which to
    pass rather than the core's advice in Python terms.
    """
    if not isinstance(ref, str) or ref not in tags or tags[ref][0] == spec.branch:
        return spec
    found = tags[ref][0]
    if follow and spec.branch == MAIN:
        return spec.on(found)
    raise click.UsageError(f"tag {ref!r} is on branch {found!r}, not {spec.branch!r}; pass -b {found}")


def refuse_number_name(kind: str, name: str) -> None:
    """Refuse a new tag or branch NAME the commands could not name (see ``name_problem``)."""
    problem = name_problem(kind, name)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="NAME")


def _named(kind: str, write: Callable[[], T]) -> T:
    """Run ``write``; an invalid tag or branch NAME is a usage error (nothing was written)."""
    try:
        return write()
    except InvalidFilterError as exc:
        if str(exc).startswith(f"invalid {kind} name"):
            raise click.BadParameter(str(exc), param_hint="NAME") from None
        raise


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
    """Name a version with a tag; without NAME, list the tags.

    NAME holds a letter: digits alone read as a version number (12 is version 12).
    """
    if name is None and (delete or at is not None):
        raise click.UsageError("name the tag to " + ("delete" if delete else "create"))
    if delete and at is not None:
        raise click.UsageError("--delete removes the tag NAME wherever it is: leave out --version")
    if name is not None and not delete:
        refuse_number_name("tag", name)
    spec = spec_from(uri, storage_options, branch)
    tags = all_tags(open_view(spec))
    if name is None:
        if as_json:
            emit_json({n: {"branch": b, "version": v} for n, (b, v) in tags.items()})
            return
        for tag_name, (tag_branch, version) in tags.items():  # a long name is never folded in two
            console().print(styled(f"{tag_name}  {tag_branch}@{version}"), soft_wrap=True)
        if not tags:
            console().print(styled("no tags", "dim"))
        return
    if delete:
        if name not in tags:
            raise NotFound(f"no tag named {name!r}")
        confirm(f"Delete tag {name!r} (it names {tags[name][0]}@{tags[name][1]})?", yes)
        writable(spec.on(tags[name][0])).delete_tag(name)
        if as_json:
            emit_json({"deleted": name, "branch": tags[name][0], "version": tags[name][1]})
            return
        click.echo(f"deleted tag {name}")
        return
    if name in tags:
        raise click.UsageError(
            f"tag {name!r} already names {tags[name][0]}@{tags[name][1]}; delete it first (tag NAME --delete)"
        )
    target = version_of(at)
    spec = tag_home(spec, target, tags, follow=True)
    store = writable(spec)
    _named("tag", lambda: store.tag(name, None if target is None else store.at_version(target).version()))
    version = store.tags()[name]
    if as_json:
        emit_json({"tag": name, "branch": spec.branch, "version": version})
        return
    click.echo(f"tagged {spec.branch}@{version} as {name}")


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
    """Create a branch from a version of --branch; without NAME, list the branches.

    NAME holds a letter: digits alone read as a version number (12 is version 12).
    """
    if name is None and (delete or source is not None):
        raise click.UsageError("name the branch to " + ("delete" if delete else "create"))
    if delete and source is not None:
        raise click.UsageError("--delete removes the branch NAME: leave out --from")
    if name is not None and not delete:
        refuse_number_name("branch", name)
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
            console().print(styled(item + origin), soft_wrap=True)
        return
    if delete:
        if name not in names or name == "main":
            raise NotFound(
                f"no branch named {name!r} to delete" + (" (main cannot be)" if name == "main" else "")
            )
        confirm(f"Delete branch {name!r} and every version on it?", yes)
        writable(spec.on(MAIN)).delete_branch(name)
        if as_json:
            emit_json({"deleted": name})
            return
        click.echo(f"deleted branch {name}")
        return
    if name in names:
        raise click.UsageError(f"a branch named {name!r} already exists")
    start = version_of(source, "--from")
    spec = tag_home(spec, start, store_tags(spec), follow=True)
    store = writable(spec)
    _named("branch", lambda: store.branch(name, start))
    parent = store_facts(open_view(spec)).branch_parents.get(name, (spec.branch, store.version()))
    if as_json:
        emit_json({"branch": name, "parent": parent[0], "version": parent[1]})
        return
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
    ref = version_of(version, "VERSION")
    assert ref is not None  # a required argument
    tag_home(spec, ref, store_tags(spec), follow=False)  # restore stays on the branch it was told
    # one session's records are written again: a record from before a reembed() is embedded anew
    store = writable(spec, DEFAULT_EMBEDDER if session is not None else None)
    then = store.at_version(ref)
    target, latest = then.version(), store.version()
    if target == latest:
        raise click.ClickException(
            f"{branch}@{target} is already the latest version of {branch}; nothing was changed"
        )
    if session is None:
        confirm(
            f"Make {branch}@{target} the latest version of {branch} (now {latest})? "
            "Later versions stay in history.",
            yes,
        )
        try:
            made = store.restore(target)
        except EncryptionError as exc:  # the core's advice names restore(N, run_id=...): say --session
            raise click.ClickException(
                str(exc).replace(f"restore({target}, run_id=...)", f"restore URI {target} --session SESSION")
            ) from exc
        click.echo(f"restored {branch}@{target} as version {made}")
        return
    run_id = find_session(sorted({*store.run_ids(), *then.run_ids()}), session)
    confirm(
        f"Make session {safe(run_id)} what it was at {branch}@{target} "
        f"({plural(then.count(run_id), 'record')}; now {store.count(run_id)})? "
        "Other sessions keep theirs; history is kept.",
        yes,
    )
    new = store.restore(target, run_id=run_id)
    click.echo(f"restored session {safe(run_id)} as of {branch}@{target} as version {new}")


COMMANDS = [tag, branch, restore]
