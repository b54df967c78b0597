"""Forgetting and the search log: no recorded search may keep what ``forget()`` erased.

A recorded search names a forgotten record through the ids it returned, its filters
(a session, an id) or its query text (the user's own words, logged before they were stored);
each such entry goes, entries that name only what remains stay, and the verification's
scan of the log's files finds nothing. ``to_dict()`` gives an entry's filters as they were
given, as JSON.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

import pytest

from lance_context import ContextStore

from .conftest import text

DAVE = "user-dave"
SECRET = "my password is HUNTER2-SECRET"
ZEBRA = "ZEBRA-SECRET-0042 the zebra note"


def log_ids(store: ContextStore) -> set[str]:
    return {entry.id for entry in store.search_log()}


def log_bytes(store_path: str) -> bytes:
    """Every byte of the search log's files."""
    found = b""
    for root, _, names in os.walk(os.path.join(store_path, "_lance_context")):
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                found += handle.read()
    return found


@pytest.mark.parametrize("session", [DAVE, "dave"])  # "dave": shorter than any payload the scan searches
@pytest.mark.parametrize("how", ["run_id", "where", "where $in"])
def test_a_search_filtered_on_a_forgotten_session_goes_though_it_found_nothing(
    store: ContextStore, store_path: str, session: str, how: str
) -> None:
    store.add([text("hello there from dave", run_id=session), text("hello from keeper", run_id="keeper")])
    filters: dict[str, dict[str, Any]] = {
        "run_id": {"run_id": session},
        "where": {"where": {"run_id": session}},
        "where $in": {"where": {"$or": [{"run_id": {"$in": ["nobody", session]}}]}},
    }
    empty = store.search("x", k=3, roles="system", record=True, **filters[how])
    kept = store.search("x", k=3, run_id="keeper", roles="system", record=True)
    assert empty == [] and kept == []
    report = store.forget(run_id=session)
    assert report.searches_removed == 1 and report.verified, report.verification
    assert log_ids(store) == {kept.search_id}
    assert session.encode() not in log_bytes(store_path)


def test_a_search_whose_query_was_the_forgotten_text_goes(store: ContextStore, store_path: str) -> None:
    store.add(text("hello from keeper", run_id="keeper"))
    asked = store.search(SECRET, k=3, record=True)  # logged before the turn is stored
    other = store.search("hello", k=3, run_id="keeper", record=True)
    store.add(text(SECRET, run_id=DAVE))
    report = store.forget(run_id=DAVE)
    assert report.verified, report.verification
    assert report.searches_removed == 1
    assert log_ids(store) == {other.search_id}
    assert asked.search_id not in log_ids(store)
    assert b"HUNTER2-SECRET" not in log_bytes(store_path)


def test_a_query_holding_only_what_kept_records_also_hold_stays(store: ContextStore) -> None:
    secret = text(SECRET, run_id=DAVE)
    store.add([text(SECRET, run_id="keeper"), secret, text("dave's other note", run_id=DAVE)])
    asked = store.search(SECRET, k=1, run_id="keeper", record=True)  # the same words, kept elsewhere
    named = store.search(f"what did {DAVE} say", k=1, run_id="keeper", record=True)  # a session kept
    report = store.forget([secret.id])
    assert report.verified and report.verification is not None, report.verification
    assert report.verification.payloads_shared >= 2
    assert report.searches_removed == 0 and log_ids(store) == {asked.search_id, named.search_id}


def test_forget_by_ids_removes_entries_whose_hits_or_filters_name_them(
    store: ContextStore, store_path: str
) -> None:
    secret = text(ZEBRA, run_id=DAVE)
    other = text("a zebra fact", run_id=DAVE)
    store.add([secret, other, text("lions", run_id="keeper")])
    returned = store.search(ZEBRA, k=1, run_id=DAVE, record=True)
    by_id = store.search("x", k=3, roles="system", where={"id": {"$in": [secret.id]}}, record=True)
    on_kept = store.search("fact", k=1, where={"id": other.id}, record=True)
    on_session = store.search("x", k=3, run_id=DAVE, roles="system", record=True)
    assert [hit.record.id for hit in returned] == [secret.id] and by_id == []
    report = store.forget([secret.id])
    assert report.verified, report.verification
    # the session lives on (``other`` is kept), so a search filtered on it stays
    assert report.searches_removed == 2
    assert log_ids(store) == {on_kept.search_id, on_session.search_id}
    assert returned.search_id not in log_ids(store) and by_id.search_id not in log_ids(store)
    assert secret.id.encode() not in log_bytes(store_path)


def test_forget_by_where_removes_entries_whose_hits_or_session_filters_name_them(
    store: ContextStore, store_path: str
) -> None:
    store.add(
        [
            text(ZEBRA, run_id=DAVE, metadata={"topic": "private"}),
            text("lions roar", run_id="keeper", metadata={"topic": "public"}),
        ]
    )
    returned = store.search("zebra", k=1, record=True)
    on_session = store.search("x", k=3, run_id=DAVE, roles="system", record=True)
    on_topic = store.search("x", k=3, where={"metadata.topic": "public"}, record=True)
    report = store.forget(where={"metadata.topic": "private"})
    assert report.verified, report.verification
    assert report.searches_removed == 2, [e.to_dict() for e in store.search_log()]
    assert log_ids(store) == {on_topic.search_id}
    assert returned.search_id not in log_ids(store) and on_session.search_id not in log_ids(store)
    assert b"ZEBRA-SECRET-0042" not in log_bytes(store_path) and DAVE.encode() not in log_bytes(store_path)


def test_to_dict_gives_the_filters_as_given_as_json(store: ContextStore) -> None:
    store.add(text("peanuts", run_id="s"))
    since = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    where = {"$or": [{"role": {"$in": ("user", "assistant")}}, {("metadata", "a", "b"): 1}]}
    store.search("peanuts", k=1, record=True)
    store.search("peanuts", k=1, run_id="s", roles=["user"], since=since, where=where, record=True)
    newest, oldest = store.search_log()
    assert oldest.to_dict()["filters"] == {}
    filters = newest.to_dict()["filters"]
    assert filters == {
        "run_id": "s",
        "roles": ["user"],
        "since": since.isoformat(),
        "where": {"$or": [{"role": {"$in": ["user", "assistant"]}}, {'["metadata", "a", "b"]': 1}]},
    }
    assert json.loads(json.dumps(newest.to_dict())) == newest.to_dict()
    assert newest.filters["where"] == where  # the entry itself keeps the values given
