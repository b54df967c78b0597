"""Review, merge and replay: ``review``, ``merge``, ``searches``, ``replay``.

``review`` and ``searches`` only read; ``replay`` reads the store as the logged search
saw it; ``merge`` writes one version on the target branch after showing what it will
apply (and asking, unless ``--yes``). The text is the core's own (``print(review)``);
``--json`` gives the result's ``to_dict()``.
"""

from __future__ import annotations

from typing import Any

import click

from lance_context import DEFAULT_EMBEDDER, ContextStore, SearchNotFoundError

from ._common import (
    MAX_HITS,
    confirm,
    console,
    emit_json,
    json_option,
    limit_option,
    spec_from,
    store_arguments,
    styled,
    whole_number,
    working,
)
from ._refs import MAIN, StoreSpec

__all__ = ["COMMANDS"]

_MODES = click.Choice(["vector", "text", "hybrid"])
_RULES = click.Choice(["fail", "ours", "theirs"])


def _read(spec: StoreSpec, branch: str | None = None) -> ContextStore:
    return spec.open_read(branch, embedder=DEFAULT_EMBEDDER)  # queries are embedded as the store was


def _known_branch(store: ContextStore, name: str) -> None:
    """Refuse a branch the store does not have, naming the ones it has."""
    names = store.branches()
    if name not in names:
        raise click.ClickException(
            f"no branch named {name!r}; branches: {', '.join(names)} (lance-context branch URI lists them)"
        )


def _print(result: Any) -> None:
    console().print(styled(str(result)), soft_wrap=True)  # the core lays out its columns


@click.command()
@store_arguments(branch=False)
@click.argument("branch_name", metavar="BRANCH")
@click.option("--query", "-q", "queries", multiple=True, metavar="TEXT", help="Evaluation query; repeatable.")
@click.option(
    "-k",
    type=whole_number(1, MAX_HITS),
    default=5,
    show_default=True,
    metavar="N",
    help="Hits per query, before and after.",
)
@click.option("--into", default=MAIN, show_default=True, metavar="NAME", help="Branch it would merge into.")
@click.option("--mode", type=_MODES, default="vector", show_default=True, help="How the queries search.")
@json_option
def review(
    uri: str,
    storage_options: tuple[str, ...],
    branch_name: str,
    queries: tuple[str, ...],
    k: int,
    into: str,
    mode: str,
    as_json: bool,
) -> None:
    """What merging BRANCH would change, per session, and each query's hits before and after.

    Nothing is written. Conflicts (records both sides changed) are listed; `merge`
    refuses them unless told which side wins.
    """
    store = _read(spec_from(uri, storage_options, into), into)
    _known_branch(store, branch_name)
    with working(f"reviewing {branch_name}"):
        result = store.review(branch_name, list(queries), k=k, into=into, mode=mode)  # type: ignore[arg-type]
    emit_json(result.to_dict()) if as_json else _print(result)


@click.command()
@store_arguments(branch=False)
@click.argument("branch_name", metavar="BRANCH")
@click.option("--into", default=MAIN, show_default=True, metavar="NAME", help="Branch to merge into.")
@click.option(
    "--on-conflict",
    type=_RULES,
    default="fail",
    show_default=True,
    help="Records both sides changed: refuse, keep the target's (ours) or take BRANCH's (theirs).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before merging.")
@json_option
def merge(
    uri: str,
    storage_options: tuple[str, ...],
    branch_name: str,
    into: str,
    on_conflict: str,
    yes: bool,
    as_json: bool,
) -> None:
    """Apply what BRANCH added, changed and deleted since it forked to --into, as one version."""
    spec = spec_from(uri, storage_options, into)
    target = _read(spec, into)
    _known_branch(target, branch_name)
    plan = target.review(branch_name, into=into, on_conflict=on_conflict)  # type: ignore[arg-type]
    if not as_json:
        _print(plan)
    if plan.conflicts and on_conflict == "fail":
        raise click.ClickException(
            f"{len(plan.conflicts)} records changed on both {into} and {branch_name} since they forked "
            f"(listed above); nothing was written. Pass --on-conflict ours to keep the copies of {into}, "
            f"or --on-conflict theirs to take those of {branch_name}"
        )
    store = spec.open_write(embedder=DEFAULT_EMBEDDER)
    if plan.plan.changes or plan.conflicts:
        confirm(f"Merge {branch_name} into {into}?", yes)
    with working(f"merging {branch_name} into {into}"):
        result = store.merge(branch_name, into=into, on_conflict=on_conflict)  # type: ignore[arg-type]
    if as_json:
        emit_json(result.to_dict())
        return
    console().print(styled(result.summary, "green" if result.merged else ""))


@click.command()
@store_arguments(branch=False)
@limit_option("searches")
@json_option
def searches(uri: str, storage_options: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Recorded searches of every branch, newest first (record them with record=True)."""
    store = spec_from(uri, storage_options).open_read()
    logged = store.search_log(limit or None)
    if as_json:
        emit_json([entry.to_dict() for entry in logged])
        return
    if not logged:
        console().print(
            styled("no recorded searches (search with record=True, or set store.record_searches)")
        )
    for entry in logged:
        _print(entry)


@click.command()
@store_arguments(branch=False)
@click.argument("search_id", metavar="SEARCH_ID")
@click.option("--at", "at", default="logged", show_default=True, metavar="logged|latest|VERSION",
              help="Replay as logged, on the latest version of its branch, or at a version.")  # fmt: skip
@json_option
def replay(uri: str, storage_options: tuple[str, ...], search_id: str, at: str, as_json: bool) -> None:
    """Re-run a recorded search exactly; with --at latest, the reason each result changed."""
    if at not in ("logged", "latest") and not (at.isascii() and at.isdigit() and int(at) >= 1):
        raise click.BadParameter(
            f"{at!r}: give logged, latest or a version number (from 1)", param_hint="--at"
        )
    store = _read(spec_from(uri, storage_options))
    try:
        result = store.replay(search_id, at=int(at) if at.isascii() and at.isdigit() else at)  # type: ignore[arg-type]
    except SearchNotFoundError:
        raise click.ClickException(
            f"no search {search_id!r} in the search log; "
            f"`lance-context searches {uri}` lists the recorded ones"
        ) from None
    if as_json:
        emit_json(result.to_dict())
        return
    _print(result)


COMMANDS = [review, merge, searches, replay]
