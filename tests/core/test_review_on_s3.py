"""Review, merge, the search log and replay on a real S3-protocol server (moto on 127.0.0.1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import lance

from lance_context import ContextRecord, ContextStore, HashingEmbedder


def test_review_merge_record_and_replay_on_s3(s3_bucket: Any) -> None:
    uri, options = s3_bucket.uri("memory"), s3_bucket.storage_options
    main = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(32))
    main.add([ContextRecord.from_content(t, run_id="chat", id=f"m{n}")
              for n, t in enumerate(["I am allergic to peanuts", "We fly to Porto", "Ines lives in Lisbon"])])  # fmt: skip
    before = main.search("peanuts", k=2, record=True)
    before_version = main.version()
    work = main.branch("consolidate")
    work.add(ContextRecord.from_content("Summary: allergic to peanuts", run_id="chat", id="sum"))
    work.delete("m0")
    version = main.version()

    review = main.review("consolidate", queries=["peanuts"], k=2)
    assert main.version() == version
    assert review.queries[0].added == ["sum"] and review.queries[0].removed == ["m0"]

    result = main.merge("consolidate")
    assert result.merged and result.version == version + 1
    assert [r.id for r in main.records("chat")] == ["m1", "m2", "sum"]
    assert not main.merge("consolidate").merged
    assert [h.id for h in review.queries[0].merged] == [h.record.id for h in main.search("peanuts", k=2)]

    main.tag("searched", before_version)  # cleanup keeps tagged versions: the search stays replayable
    main.compact()
    main.cleanup(older_than=timedelta(0))
    # what Lance does to files it does not know once they are a week old: the log is not its to delete
    lance.dataset(uri, storage_options=options).cleanup_old_versions(
        older_than=timedelta(0), delete_unverified=True, error_if_tagged_old_versions=False
    )
    other = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(32))
    assert [e.id for e in other.search_log()] == [before.search_id]
    assert other.replay(before.search_id or "").identical
    later = other.replay(before.search_id or "", at="latest")
    assert {c.id: c.reason for c in later.changes}["sum"] == "added_since"
    assert {c.id: c.reason for c in later.changes}["m0"] == "deleted_since"
    assert main.version() == other.version()  # recording and replaying wrote no store version
    keys = s3_bucket.objects()
    assert any(k.startswith("memory/_lance_context/search_log.lance/") for k in keys)
