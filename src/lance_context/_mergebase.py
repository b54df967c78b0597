"""Where two branches of a store last shared history: the base a merge compares both sides with.

The fork point comes from Lance's branch records (each branch knows its parent branch and
the version it forked at); after one branch was merged into the other, the version that
was merged is the base instead, read from the merge commits' transaction properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lance

from ._dataset import MAIN_BRANCH
from ._errors import InvalidFilterError, VersionNotFoundError
from ._versions import last_merge

__all__ = ["merge_base", "since_merges"]


def since_merges(
    fork: tuple[str, int], branch: str, into: str, theirs: lance.LanceDataset, ours: lance.LanceDataset
) -> tuple[tuple[str, int], int | None]:
    """The merge base once earlier merges between the two branches are counted.

    After ``branch`` at version V was merged into ``into``, both hold everything ``branch``
    had at V, so V is the base: what ``into`` changed since (a record it deleted, say) is
    not undone by merging the unchanged branch again. Likewise after ``into`` at version W
    was merged into ``branch`` (at version M of ``branch``, which is returned too: that
    merge gave the records it brought the branch's own positions). When both happened, the
    later one (the one that holds the other) is the base; merges that crossed fall back to
    the fork point.
    """
    into_target = last_merge(ours, branch, fork[1])  # (merge version on `into`, branch version merged)
    into_source = last_merge(theirs, into, fork[1])  # (merge version on `branch`, `into` version merged)
    if into_target and (into_source is None or into_source[0] <= into_target[1]):
        return (branch, into_target[1]), None
    if into_source and (into_target is None or into_source[1] >= into_target[0]):
        return (into, into_source[1]), into_source[0]
    return fork, None


def merge_base(branches: Mapping[str, Mapping[str, Any]], source: str, target: str) -> tuple[str, int]:
    """The branch and version where ``source`` and ``target`` last shared history.

    Args:
        branches: Lance's ``branches.list()``: each branch's ``parent_branch`` (None for
            main) and ``parent_version``.
        source: The branch merged.
        target: The branch merged into.
    """
    if source == target:
        raise InvalidFilterError(f"cannot merge branch {source!r} into itself")

    def lineage(name: str) -> list[tuple[str, int | None]]:
        chain: list[tuple[str, int | None]] = [(name, None)]
        while name != MAIN_BRANCH:
            info = branches.get(name)
            if info is None:
                raise VersionNotFoundError(f"no branch named {name!r}")
            name = str(info.get("parent_branch") or MAIN_BRANCH)
            if any(name == seen for seen, _ in chain):
                break
            chain.append((name, int(info["parent_version"])))
        return chain

    forks = dict(lineage(target))
    for branch, version in lineage(source):
        if branch in forks:
            known = [v for v in (version, forks[branch]) if v is not None]
            return branch, min(known)
    raise VersionNotFoundError(
        f"branches {source!r} and {target!r} share no history that still exists (a parent was deleted)"
    )
