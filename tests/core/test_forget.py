"""Verifiable forgetting: records erased from the latest version, from history, and from every file.

Each test reads the store's raw files itself (local disk, or every object in the moto
bucket) before and after: before, the payloads are found (so the search can see them);
after, not one byte of them remains anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest
from lance.fragment import write_fragments

from lance_context import (
    CachePolicy,
    ContextRecord,
    ContextStore,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidFilterError,
    MergeConflictError,
    ReadOnlyError,
    VersionNotFoundError,
)
from lance_context._mergeplan import OnConflict

from .conftest import text

SECRET = "SECRET-PAYLOAD alpha bravo charlie delta"
SSN = "SSN-123-45-6789"
BLOB = b"BINARY-SECRET-BYTES-xyzzy-0123"
BRANCH_SECRET = "BRANCH-ONLY-SECRET about the plan"
ALICE = "user-alice"
KEEPER = "keeper-session"


def local_files(path: str) -> dict[str, bytes]:
    found = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, path)] = handle.read()
    return found


def holding(files: dict[str, bytes], needles: Iterable[bytes]) -> dict[bytes, list[str]]:
    """Which files hold each needle."""
    return {n: hits for n in needles if (hits := [p for p, data in files.items() if n in data])}


def build(store: ContextStore) -> dict[str, Any]:
    """History with the secret session spread over versions, a compaction, indexes, a tag and a branch."""
    for i in range(5):
        store.add(text(f"keeper message {i} about zebras", run_id=KEEPER))
    early = store.version()
    store.tag("early")
    secret = text(SECRET, run_id=ALICE, metadata={"ssn": SSN, "topic": "private"})
    blob = ContextRecord.from_content(BLOB, run_id=ALICE, role="tool")
    store.add([secret, blob])
    store.add(text("keeper message after alice", run_id=KEEPER))
    store.compact()  # copies the rows into a new file and builds the full-text index over them
    store.tag("after")
    branch = store.branch("what-if")
    branch.add(text("branch note", run_id=KEEPER))
    branch.add(text(BRANCH_SECRET, run_id=ALICE))
    store.delete(run_id=ALICE)  # the latest no longer shows them; history still does
    store.add(text("keeper message at the end", run_id=KEEPER))
    return {"early": early, "early_texts": [r.text for r in store.at_version(early).records()],
            "ids": [secret.id, blob.id]}  # fmt: skip


NEEDLES = [SECRET.encode(), SSN.encode(), BLOB, BRANCH_SECRET.encode(), ALICE.encode()]


def check_forgotten(
    store: ContextStore, files: Callable[[], dict[str, bytes]], built: dict[str, Any]
) -> None:
    before = holding(files(), NEEDLES + [i.encode() for i in built["ids"]])
    assert set(before) >= {SECRET.encode(), SSN.encode(), BLOB, BRANCH_SECRET.encode(), ALICE.encode()}
    assert any(
        "_versions" in p or "_transactions" in p for p in before[ALICE.encode()]
    )  # commit metadata too

    report = store.forget(run_id=ALICE)

    assert report.records == 3 and report.verified, report
    assert report.verification is not None and report.verification.payloads_checked >= 6
    assert report.tags_removed == {"after": ("main", report.tags_removed["after"][1])}
    assert report.versions_expired["main"][0] == built["early"] + 1
    assert report.versions_expired["what-if"] and report.files_deleted > 0 and report.bytes_deleted > 0
    assert holding(files(), NEEDLES + [i.encode() for i in built["ids"]]) == {}
    # the store still works: latest, early history, the branch, full-text search (index rebuilt)
    assert ALICE not in store.run_ids() and store.count(ALICE) == 0
    assert [r.text for r in store.at_version(built["early"]).records()] == built["early_texts"]
    assert store.tags() == {"early": built["early"]}
    branch = ContextStore.open(store.uri, storage_options=store.storage_options, embedder=HashingEmbedder(32),
                               branch="what-if")  # fmt: skip
    assert [r.text for r in branch.records()][-1] == "branch note" and branch.count(ALICE) == 0
    assert store.search("zebras", mode="text", k=1)[0].record.run_id == KEEPER
    expired = report.versions_expired["main"][-1]
    with pytest.raises(VersionNotFoundError):
        store.checkout(expired)
    again = store.forget(run_id=ALICE)
    assert again.records == 0 and not again.versions_written


def test_forget_a_session_erases_it_from_every_version_branch_and_file(
    store: ContextStore, store_path: str
) -> None:
    built = build(store)
    check_forgotten(store, lambda: local_files(store_path), built)


def test_a_branch_made_where_the_records_were_loses_its_fork_point_and_still_merges(
    store: ContextStore,
) -> None:
    store.add(text("hello", run_id=KEEPER, id="h"))
    store.add(text(SECRET, run_id=ALICE))
    fork = store.version()
    branch = store.branch("what-if")  # made from the version holding the secret, nothing written on it yet
    store.add(text("later", run_id=KEEPER, id="l"))

    report = store.forget(run_id=ALICE)

    assert report.verified and fork in report.versions_expired["main"]
    assert fork not in {v.version for v in store.versions()}  # gone, not listed with its files erased
    for listed in store.versions():
        store.at_version(listed.version).records()
    with pytest.raises(VersionNotFoundError):
        store.restore(fork)
    assert [r.text for r in store.records()] == ["hello", "later"]
    branch.add(text("on the branch", run_id=KEEPER, id="b"))
    review = store.review("what-if")  # the base is then the newest older version of main
    assert review.plan.base == ("main", fork - 1) and not review.plan.conflicts
    merged = store.merge("what-if")
    assert [(c.kind, c.id) for c in merged.changes] == [("added", "b")]
    assert [r.id for r in store.records()] == ["h", "l", "b"]


@pytest.mark.parametrize(("on_conflict", "kept"), [("ours", ["b", "h", "y"]), ("theirs", ["b", "h", "x"])])
def test_a_record_one_side_deleted_after_an_erased_fork_point_conflicts_and_is_not_brought_back(
    store: ContextStore, on_conflict: OnConflict, kept: list[str]
) -> None:
    store.add(text("hello", run_id=KEEPER, id="h"))
    store.add(
        [text(SECRET, run_id=ALICE), text("x", run_id=KEEPER, id="x"), text("y", run_id=KEEPER, id="y")]
    )
    fork = store.version()
    branch = store.branch("what-if")
    store.delete(ids=["x"])  # the target deletes x after the fork
    branch.delete(ids=["y"])  # the branch deletes y
    branch.add(text("on the branch", run_id=KEEPER, id="b"))

    store.forget(
        run_id=ALICE
    )  # the fork point held the secret: the base is the version before, without x and y

    review = store.review("what-if")
    assert review.plan.base == ("main", fork - 1)
    assert [(c.id, c.ours, c.theirs) for c in review.plan.conflicts] == [("x", None, "x"), ("y", "y", None)]
    with pytest.raises(MergeConflictError, match="x"):
        store.merge("what-if")
    assert [r.id for r in store.records()] == ["h", "y"], "a refused merge writes nothing"
    store.merge("what-if", on_conflict=on_conflict)
    assert sorted(r.id for r in store.records()) == kept  # each side's deletion as chosen


def test_forget_on_object_storage_leaves_no_object_holding_the_payloads(s3_bucket: Any) -> None:
    store = ContextStore.open(s3_bucket.uri("forget"), storage_options=s3_bucket.storage_options,
                              embedder=HashingEmbedder(32))  # fmt: skip
    built = build(store)
    check_forgotten(store, s3_bucket.objects, built)


def test_forget_by_id_and_by_filter_erases_every_copy_of_those_records_only(store: ContextStore,
                                                                             store_path: str) -> None:  # fmt: skip
    keep = text("kept record of the same session", run_id="s1", metadata={"label": "public"})
    first = text("first draft WITH-OLD-CONTENT-0001", run_id="s1", metadata={"label": "public"})
    store.add([keep, first])
    store.upsert(text("second draft", run_id="s1", id=first.id, metadata={"label": "hidden"}))
    hidden = text("HIDDEN-VALUE-CONTENT-0002", run_id="s2", metadata={"label": "hidden"})
    store.add(hidden)
    report = store.forget(where={"metadata.label": "hidden"})
    assert set(report.record_ids) == {first.id, hidden.id} and report.rows == 3  # the old copy too
    assert report.verified
    assert [r.id for r in store.records()] == [keep.id]
    assert holding(local_files(store_path), [b"WITH-OLD-CONTENT-0001", b"HIDDEN-VALUE-CONTENT-0002"]) == {}
    other = text("another one", run_id="s1")
    store.add(other)
    assert store.forget([other.id]).record_ids == (other.id,)
    assert [r.id for r in store.records()] == [keep.id]


def test_forget_finds_deleted_rows_whose_versions_were_already_cleaned_up(store: ContextStore,
                                                                           store_path: str) -> None:  # fmt: skip
    gone = text("DELETED-BUT-STILL-ON-DISK-0003", run_id="s1")
    store.add([text("neighbour", run_id="s1"), gone])
    store.delete(gone.id)
    from datetime import timedelta

    store.cleanup(timedelta(0))  # only the latest version is left, and it hides the row
    assert store.get(gone.id) is None
    assert holding(local_files(store_path), [b"DELETED-BUT-STILL-ON-DISK-0003"])  # a deletion vector hides it
    report = store.forget([gone.id])
    assert report.records == 1 and report.rows == 1 and report.verified
    assert holding(local_files(store_path), [b"DELETED-BUT-STILL-ON-DISK-0003"]) == {}
    assert [r.text for r in store.records()] == ["neighbour"]


def test_a_leftover_file_of_an_interrupted_write_is_found_and_deleted(
    store: ContextStore, store_path: str
) -> None:
    record = text("LEFTOVER-SECRET-0004", run_id="s1")
    store.add([record, text("other", run_id="s1")])
    ds = lance.dataset(store_path)
    row = ds.to_table(filter=f"id = '{record.id}'")
    write_fragments(row, ds, schema=ds.schema)  # written, never committed: no version references it
    report = store.forget([record.id])
    assert report.verified and report.verification is not None
    assert [p for p in report.verification.leftovers_deleted if p.startswith("data/")]
    assert holding(local_files(store_path), [b"LEFTOVER-SECRET-0004"]) == {}


def test_a_file_another_writer_deletes_during_the_verification_is_passed_over(
    store: ContextStore, store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost merge deletes its file while the scan runs: gone, it holds nothing to find."""
    from lance_context import _verify

    record = text("FORGET-WHILE-A-MERGE-LOSES-0006", run_id="s1")
    store.add([record, text("other", run_id="s1")])
    ds = lance.dataset(store_path)
    fragments = write_fragments(ds.to_table(), ds, schema=ds.schema)  # a merge's file, never committed
    doomed = {f"data/{data_file.path}" for fragment in fragments for data_file in fragment.files}
    listed: list[set[str]] = []
    real = _verify.present

    def listing_then_the_merge_loses(handle: Any) -> dict[str, int]:
        found: dict[str, int] = real(handle)
        listed.append(doomed & set(found))
        for path in doomed:  # as another writer's lost merge does, once the scan has listed it
            os.remove(os.path.join(store_path, path))
        return found

    monkeypatch.setattr(_verify, "present", listing_then_the_merge_loses)
    report = store.forget([record.id])
    assert listed == [doomed]
    assert report.verified and report.verification is not None
    assert not report.verification.leaks
    assert holding(local_files(store_path), [b"FORGET-WHILE-A-MERGE-LOSES-0006"]) == {}


def test_the_verification_reports_what_it_finds(store: ContextStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add([text("TRACE-TO-BE-FOUND-0005", run_id="s1"), text("other", run_id="s1")])
    monkeypatch.setattr("lance_context._forget.expire_versions", lambda handle, versions, action: (0, 0))
    report = store.forget(run_id="s1", where={"text": {"$contains": "TRACE"}})
    assert not report.verified and report.verification is not None
    assert any("erased record" in leak or "text" in leak for leak in report.verification.leaks)


def test_a_dry_run_changes_nothing(store: ContextStore, store_path: str) -> None:
    store.add([text("a", run_id="s1"), text("b", run_id="s2")])
    store.tag("t")
    before = local_files(store_path)
    plan = store.forget(run_id="s1", dry_run=True)
    assert plan.dry_run and plan.records == 1 and plan.verification is None
    assert plan.tags_removed == {"t": ("main", store.version())} and plan.versions_expired["main"]
    assert local_files(store_path) == before


def test_forget_needs_a_condition_and_a_writable_store(store: ContextStore, store_path: str) -> None:
    store.add(text("a", run_id="s1"))
    with pytest.raises(InvalidFilterError):
        store.forget()
    with pytest.raises(ReadOnlyError):
        ContextStore.open(store_path, read_only=True, embedder=None).forget(run_id="s1")
    version = store.version()
    assert store.forget(run_id="nobody").records == 0 and store.version() == version


def test_forget_on_an_encrypted_store(tmp_path: Path) -> None:
    policy = EncryptionPolicy(key=os.urandom(32))
    path = str(tmp_path / "sealed.lance")
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy)
    record = text("sealed words", run_id="tenant-b")
    store.add([record, text("keep", run_id="tenant-a")])
    sealed = lance.dataset(path).to_table(filter=f"id = '{record.id}'").column("binary_payload")[0].as_py()
    assert holding(local_files(path), [sealed])
    report = store.forget(run_id="tenant-b")
    assert report.verified and holding(local_files(path), [sealed, record.id.encode()]) == {}
    assert [r.text for r in store.records()] == ["keep"]


def test_forget_rows_of_a_store_without_vectors(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "plain.lance"), embedder=None)
    store.add([text("NO-VECTOR-SECRET-0006", run_id="s1"), text("kept", run_id="s2")])
    assert store.forget(run_id="s1").verified
    assert holding(local_files(str(tmp_path / "plain.lance")), [b"NO-VECTOR-SECRET-0006"]) == {}
    assert pa.array([r.text for r in store.records()]).to_pylist() == ["kept"]


def test_a_forget_cut_short_during_expiry_is_finished_by_running_it_again(store: ContextStore,
                                                                           store_path: str) -> None:  # fmt: skip
    store.add(text("kept", run_id="s1"))
    store.add(text("HALF-EXPIRED-SECRET-0007", run_id="user-carol"))
    store.add(text("kept too", run_id="s1"))
    versions = Path(store_path) / "_versions"
    manifests = {p: p.read_bytes() for p in versions.iterdir() if p.suffix == ".manifest"}
    store.forget(run_id="user-carol")
    kept = {v.version for v in store.versions()}
    for path, content in manifests.items():  # a kill between cleanup's file and manifest deletions
        path.write_bytes(content)
    reopened = ContextStore.open(
        store_path, embedder=HashingEmbedder(32), caches=CachePolicy(metadata_bytes=2**20)
    )
    broken = tuple(v.version for v in reopened.versions() if v.version not in kept)
    assert broken  # listed again, their files gone
    report = reopened.forget(run_id="user-carol")
    assert report.records == 0 and report.versions_expired["main"] == broken
    assert report.verified and [r.text for r in reopened.records()] == ["kept", "kept too"]
    assert holding(local_files(store_path), [b"HALF-EXPIRED-SECRET-0007", b"user-carol"]) == {}


def test_cached_conversation_tails_forget_too(store: ContextStore, store_path: str) -> None:
    store.add([text("one", run_id="s1"), text("two", run_id="s1"), text("other", run_id="s2")])
    other = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    assert [r.text for r in store.records("s1", last=5)] == ["one", "two"]  # now served from memory
    assert [r.text for r in other.records("s1", last=5)] == ["one", "two"]
    store.forget(run_id="s1")
    assert store.records("s1", last=5) == [] and other.records("s1", last=5) == []
    assert [r.text for r in other.records("s2", last=5)] == ["other"]


def test_payloads_the_store_itself_names_are_not_leaks(store: ContextStore) -> None:
    store.add([text("other", run_id="s1"), text("x", run_id="s2", metadata={"field": "text_payload"})])
    report = store.forget(run_id="s2")
    assert report.verified and report.verification is not None and report.verification.payloads_shared >= 1


def test_forgetting_a_chat_turn_removes_it_from_the_index_text_of_the_turns_after_it(
    store: ContextStore, store_path: str
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from lance_context.langchain import LanceChatMessageHistory

    history = LanceChatMessageHistory("chat", store=store)
    history.add_messages([HumanMessage("Plan a trip to Lisbon please"), AIMessage("Sure, in spring?")])
    history.add_messages([HumanMessage("MY-HOME-ADDRESS is 12 Rua Augusta"), AIMessage("Noted the address")])
    history.add_messages([HumanMessage("And book a tram tour"), AIMessage("Booked the tram tour")])
    secret = next(r for r in store.records() if r.text and "MY-HOME-ADDRESS" in r.text)
    quoting = lance.dataset(store_path).to_table(columns=["search_text"]).column("search_text").to_pylist()
    assert sum("MY-HOME-ADDRESS" in (t or "") for t in quoting) >= 2  # later turns quote it as context
    report = store.forget([secret.id])
    assert report.verified, report.verification
    assert holding(local_files(store_path), [b"MY-HOME-ADDRESS"]) == {}
    assert [m.content for m in history.messages] == [
        "Plan a trip to Lisbon please", "Sure, in spring?", "Noted the address",
        "And book a tram tour", "Booked the tram tour",
    ]  # fmt: skip
    assert {h.record.text for h in store.search("tram tour", mode="text", k=2)} == {
        "And book a tram tour",
        "Booked the tram tour",
    }


def test_the_verification_finds_an_erased_turn_quoted_in_kept_index_text(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.messages import HumanMessage

    from lance_context.langchain import LanceChatMessageHistory

    history = LanceChatMessageHistory("chat", store=store)
    history.add_messages([HumanMessage("QUOTED-SECRET-TURN-0008 here"), HumanMessage("a later turn")])
    secret = store.records()[0]
    monkeypatch.setattr("lance_context._forget.quotes_in", lambda fragment, quotes: False)
    monkeypatch.setattr("lance_context._forget.unquoted", lambda table, quotes: table)
    report = store.forget([secret.id])
    assert report.verification is not None and not report.verified
    assert any("index text of a kept record quotes erased text" in leak for leak in report.verification.leaks)


def test_recorded_searches_that_returned_a_forgotten_record_go_too(
    store: ContextStore, store_path: str
) -> None:
    store.add(
        [text("LOGGED-SECRET-ANSWER-0009 about zebras", run_id="user-dave"), text("zebra facts", run_id="s1")]
    )
    gone = store.search("zebras", k=2, record=True)
    kept = store.search("zebra facts", k=1, run_id="s1", record=True)
    report = store.forget(run_id="user-dave")
    assert report.searches_removed == 1 and report.verified, report.verification
    assert [entry.id for entry in store.search_log()] == [kept.search_id]
    assert gone.search_id not in {entry.id for entry in store.search_log()}
    assert holding(local_files(store_path), [b"LOGGED-SECRET-ANSWER-0009", b"user-dave"]) == {}


@pytest.mark.parametrize("ending", ["secret at the head", "restored before the secret", "compacted"])
def test_a_dry_run_names_exactly_the_versions_the_forget_expires(store: ContextStore, ending: str) -> None:
    store.add(text("kept one", run_id=KEEPER))
    clean = store.version()
    store.add(text(SECRET, run_id=ALICE))
    store.add(text("kept two", run_id=KEEPER))
    if ending == "restored before the secret":
        store.restore(clean)
    elif ending == "compacted":
        store.compact()  # indexes over the secret's rows
    plan = store.forget(run_id=ALICE, dry_run=True)
    report = store.forget(run_id=ALICE)
    assert report.verified and plan.versions_expired == report.versions_expired, ending


def test_recorded_searches_go_only_when_their_session_filter_names_a_forgotten_session(
    store: ContextStore,
) -> None:
    store.add([text("chat one note", run_id="chat-1"), text("chat ten note", run_id="chat-10")])
    store.add(text("a user note", run_id="user", role="assistant"))
    named = store.search("note", k=1, where={"run_id": {"$in": ["nobody", "chat-1"]}}, record=True)
    longer = store.search("note", k=1, run_id="chat-10", record=True)  # a name that only starts the same
    a_role = store.search(  # "user" as a role, not a session
        "note", k=1, run_id="chat-10", roles="user", where={"role": "user"}, record=True
    )
    report = store.forget(where={"run_id": {"$in": ["chat-1", "user"]}})
    assert report.searches_removed == 1 and report.verified, report.verification
    assert {entry.id for entry in store.search_log()} == {longer.search_id, a_role.search_id}
    assert named.search_id not in {entry.id for entry in store.search_log()}


def test_governance_calls_refuse_bad_arguments_clearly_and_write_nothing(
    store: ContextStore, tmp_path: Path
) -> None:
    from lance_context import EncryptionError, EncryptionPolicy, InvalidFilterError, RetentionPolicy

    store.add(text("one message", run_id="a"))
    before = store.version()
    refusals: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: store.forget(run_id=123), InvalidFilterError, "run_id must be a non-empty string"),  # type: ignore[arg-type]
        (lambda: store.forget(123), InvalidFilterError, "ids must be a string or an iterable"),  # type: ignore[arg-type]
        (lambda: store.forget([1, 2]), InvalidFilterError, "record ids are strings"),  # type: ignore[list-item]
        (lambda: store.export(str(tmp_path / "x"), version="2"), InvalidFilterError, "tags go in tag="),  # type: ignore[arg-type]
        (lambda: store.export(str(tmp_path / "x"), version=-1), InvalidFilterError, "1 or more"),
        (lambda: RetentionPolicy(keep_all=7), ValueError, "keep_all must be a timedelta"),  # type: ignore[arg-type]
        (lambda: store.rotate_key(b"k" * 32), EncryptionError, "takes an EncryptionPolicy"),  # type: ignore[arg-type]
        (
            lambda: EncryptionPolicy(key=b"k" * 32, clear_metadata=None),  # type: ignore[arg-type]
            EncryptionError,
            "clear_metadata takes a set of metadata keys",
        ),
    ]
    for call, error, message in refusals:
        with pytest.raises(error, match=message):
            call()
    assert store.version() == before and not (tmp_path / "x").exists()


def test_a_kept_record_loses_only_its_links_to_forgotten_records(store: ContextStore) -> None:
    from lance_context import Relationship

    image = text("ATTACHED-SECRET-0010 photo", id="image")
    note = text("a kept note", id="note")
    store.add([image, note])  # one file
    reply = ContextRecord(
        id="reply",
        run_id="s1",
        role="assistant",
        text_payload="a reply that is kept",
        relationships=[Relationship("image", "attachment"), Relationship("note", "reply_to")],
    )
    store.add(reply)  # another file, which holds no forgotten record, only a link to one
    report = store.forget(["image"])
    assert report.records == 1 and report.verified, report.verification
    kept = store.get("reply")
    assert kept is not None and [(r.target_id, r.relation) for r in kept.relationships] == [
        ("note", "reply_to")
    ]
    assert store.get("note") is not None and store.get("image") is None
