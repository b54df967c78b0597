"""What ``store.forget(...)`` is asked to erase, checked before anything is read or written.

Forgetting cannot be undone, so a call whose conditions select nothing in particular is
refused rather than read as "everything": ``where={}`` (an empty dict) or a ``where``
made only of empty combinators (``{"$and": []}``) with no ids and no session would
otherwise match every record of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import InvalidFilterError
from ._filters import compile_where

__all__ = ["ForgetTarget", "check_dry_run", "forget_target"]

#: The SQL ``compile_where`` gives a ``where`` that puts no condition on any field.
_NO_CONDITION = "true"

ForgetTarget = tuple[list[str] | None, str | None, str | None]


def _ids(ids: str | Iterable[str] | None) -> list[str] | None:
    if ids is not None and not isinstance(ids, str) and not isinstance(ids, Iterable):
        raise InvalidFilterError(f"ids must be a string or an iterable of strings, got {ids!r}")
    id_list = [ids] if isinstance(ids, str) else (None if ids is None else list(ids))
    if id_list is not None and not all(isinstance(i, str) for i in id_list):
        raise InvalidFilterError(f"record ids are strings, got {id_list!r}")
    return id_list


def check_dry_run(dry_run: object) -> None:
    """Refuse a ``dry_run`` that is not a bool: ``"no"`` or ``0`` must not decide what is erased.

    Raises:
        InvalidFilterError: ``dry_run`` is not ``True`` or ``False``.
    """
    if not isinstance(dry_run, bool):
        raise InvalidFilterError(f"dry_run must be True or False, got {dry_run!r}; nothing was changed")


def forget_target(
    ids: str | Iterable[str] | None, run_id: str | None, where: Mapping[Any, Any] | None
) -> ForgetTarget:
    """``(ids, run_id, where SQL)`` to erase; raises when they are malformed or select nothing.

    Raises:
        InvalidFilterError: An argument of the wrong type, or no condition at all (an
            empty ``where`` included).
    """
    id_list = _ids(ids)
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise InvalidFilterError(f"run_id must be a non-empty string, got {run_id!r}")
    where_sql = None if where is None else compile_where(where)
    if where_sql is not None and where_sql.replace("(", "").replace(")", "").strip() == _NO_CONDITION:
        where_sql = None  # {"$and": []}: no condition on any field
    if id_list is None and run_id is None and where_sql is None:
        shown = "" if where is None else f" (where={dict(where)!r} puts no condition on any field)"
        raise InvalidFilterError(
            f"forget() needs ids, run_id or a where condition (all given must match){shown}; "
            "nothing was erased"
        )
    return id_list, run_id, where_sql
