"""forget, cleanup --retention, snapshot and import-snapshot, local and on S3.

The commands run in this process (``in_process``); snapshot and import-snapshot across S3
stay a real subprocess, so the console entry point of this command group stays covered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from ..conftest import S3Bucket
from ._stores import Built
from .conftest import InProcess, run_cli, snapshot
from .test_object_storage import _options

TRIP_WORDS = b"cherry blossoms"


def _files(path: str) -> bytes:
    return b"".join((Path(path) / name).read_bytes() for name in snapshot(path))


def test_forget_asks_then_erases_a_conversation_from_every_version(
    in_process: InProcess, store_copy: Callable[[], Built]
) -> None:
    built = store_copy()
    assert TRIP_WORDS in _files(built.uri)
    before = snapshot(built.uri)
    refused = in_process("forget", built.uri, "--session", "trip")
    assert refused.code == 2 and "pass --yes" in refused.err and "cannot be undone" in refused.err
    plan = in_process("forget", built.uri, "--session", "trip", "--dry-run", "--json").json()
    assert (
        plan["dry_run"] and plan["records"] == 6 and "before-answer" in plan["tags_removed"]
    )  # 5 + the branch
    assert snapshot(built.uri) == before  # asking and a dry run write nothing
    done = in_process("forget", built.uri, "--session", "trip", "--yes")
    assert done.code == 0, done.err
    assert "erased 6 records" in done.out and "tags removed: before-answer" in done.out
    assert "verified: no trace of the erased records remains" in done.out
    assert TRIP_WORDS not in _files(built.uri)  # the what-if branch's copy went too
    shown = in_process("show", built.uri, "trip")
    assert shown.code == 1 and "trip" in shown.err
    other = in_process("show", built.uri, "user-42")
    assert other.code == 0 and "peanuts" in other.out
    nothing = in_process("forget", built.uri, "--id", "no-such-id", "--yes")
    assert nothing.code == 0 and "nothing was changed" in nothing.out
    usage = in_process("forget", built.uri, "--yes")
    assert usage.code == 2 and "--session, --id or --where" in usage.err


def test_forget_finds_a_session_by_its_key_when_main_no_longer_shows_it(
    in_process: InProcess, store_copy: Callable[[], Built]
) -> None:
    built = store_copy()
    ContextStore.open(built.uri, embedder=None).delete(
        run_id="langchain.history:trip"
    )  # history and a branch keep it
    plan = in_process("forget", built.uri, "--session", "trip", "--dry-run", "--json").json()
    assert plan["records"] == 6  # the key resolves on the what-if branch
    assert in_process("forget", built.uri, "--session", "trip", "--yes").code == 0
    again = in_process("forget", built.uri, "--session", "trip", "--dry-run")
    assert again.code == 0 and "no records of session 'trip' in any version or branch" in again.out


def test_forget_takes_a_full_run_id_from_history_before_another_session_with_that_ending(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = str(tmp_path / "names.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(16))
    store.add(ContextRecord(run_id="42", text_payload="user 42 private data"))
    store.delete(run_id="42")  # only older versions hold session 42 now
    store.add(ContextRecord(run_id="tenant:42", text_payload="tenant 42 data to keep"))
    asked = in_process("forget", uri, "--session", "42")
    assert asked.code == 2 and "Erase 1 record of session '42'" in asked.err
    assert in_process("forget", uri, "--session", "42", "--yes").code == 0
    reopened = ContextStore.open(uri, embedder=None)
    assert [r.text for r in reopened.records("tenant:42")] == ["tenant 42 data to keep"]
    assert b"user 42 private" not in _files(uri)
    # a core session is named by its full run id only, never by what follows its ':'
    missing = in_process("forget", uri, "--session", "42", "--dry-run")
    assert missing.code == 0 and "no records of session '42'" in missing.out


def test_cleanup_with_a_retention_policy(in_process: InProcess, store_copy: Callable[[], Built]) -> None:
    built = store_copy()
    neither = in_process("cleanup", built.uri, "--yes")
    assert neither.code == 2 and "--older-than AGE or --retention POLICY" in neither.err
    bad = in_process("cleanup", built.uri, "--retention", "weekly=2", "--yes")
    assert bad.code == 2 and "all=AGE" in bad.err
    both = in_process("cleanup", built.uri, "--retention", "default", "--keep-versions", "5", "--yes")
    assert both.code == 2 and "--keep-versions and --unreferenced go with --older-than" in both.err
    years = in_process("cleanup", built.uri, "--retention", "all=7d,hourly=30d,daily=1y", "--yes", "--json")
    assert years.code == 0, years.err  # the README's example
    huge = in_process("cleanup", built.uri, "--older-than", "99999999d", "--yes")
    assert huge.code == 2 and "--older-than" in huge.err and "Traceback" not in huge.err
    kept = in_process("cleanup", built.uri, "--retention", "default", "--yes", "--json").json()
    assert sum(len(v) for v in kept["removed"].values()) == 0  # everything is younger than a week
    report = in_process(
        "cleanup", built.uri, "--retention", "all=0s,hourly=none,daily=none", "--yes", "--json"
    ).json()
    assert len(report["removed"]["main"]) > 5 and report["bytes_removed"] > 0
    store = ContextStore.open(built.uri, read_only=True, embedder=None)
    versions = [v.version for v in store.versions()]
    assert built.tagged in versions and built.latest in versions  # the tag and the latest stay


def test_snapshot_and_import_snapshot_across_local_disk_and_s3(
    store_copy: Callable[[], Built], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    # a real subprocess: this command group's entry point, with -o/-O options parsed from argv
    built = store_copy()
    opts = _options(s3_bucket)
    dest_opts = [arg.replace("-o", "-O") if arg == "-o" else arg for arg in opts]
    remote = s3_bucket.uri("snap")
    wrote = run_cli("snapshot", built.uri, remote, "--tag", "before-answer", *dest_opts)
    assert wrote.code == 0, wrote.err
    assert f"wrote main@{built.tagged} to {remote}" in wrote.out
    assert s3_bucket.secret_access_key not in wrote.out
    info = run_cli("info", remote, *opts, "--json").json()
    assert info["records"] == 4 and info["embedder"] == "hashing"
    copy = str(tmp_path / "copy.lance")
    back = run_cli("import-snapshot", copy, remote, *dest_opts)
    assert back.code == 0 and "copied to" in back.out and "4 records" in back.out
    target = ContextStore.open(str(tmp_path / "target.lance"), embedder=HashingEmbedder(32))
    target.add(ContextRecord.from_content("mine", run_id="own"))
    refused = run_cli("import-snapshot", str(tmp_path / "target.lance"), remote, *dest_opts)
    assert refused.code == 2 and "pass --yes" in refused.err
    merged = run_cli("import-snapshot", str(tmp_path / "target.lance"), remote, *dest_opts, "--yes")
    assert merged.code == 0 and "merged into" in merged.out and "5 records at version 3" in merged.out
