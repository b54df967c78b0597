"""Retention: which versions survive as they age (controlled timestamps), and what applying it frees."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from lance_context import ContextStore, HashingEmbedder, RetentionPolicy, VersionInfo, VersionNotFoundError

from .conftest import text

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def history(every: timedelta, span: timedelta, tags: dict[int, str] | None = None) -> list[VersionInfo]:
    """A version every ``every`` over the last ``span``, oldest first (version 1 is the oldest)."""
    count = int(span / every)
    named = tags or {}
    return [
        VersionInfo(i + 1, NOW - span + i * every, "add", i, (named[i + 1],) if i + 1 in named else ())
        for i in range(count + 1)
    ]


def survivors(policy: RetentionPolicy, versions: list[VersionInfo]) -> list[VersionInfo]:
    gone = set(policy.expired(versions, NOW))
    return [v for v in versions if v.version not in gone]


def test_the_default_policy_keeps_everything_for_a_week_then_hourly_for_a_month_then_daily() -> None:
    versions = history(timedelta(minutes=10), timedelta(days=40), tags={5: "launch"})
    kept = survivors(RetentionPolicy(), versions)
    ages = {v.version: NOW - v.timestamp for v in versions}
    week = [v for v in versions if ages[v.version] < timedelta(days=7)]
    assert all(v in kept for v in week)  # time travel inside the window is untouched
    hourly = [v for v in kept if timedelta(days=7) <= ages[v.version] < timedelta(days=30)]
    hours = {v.timestamp.replace(minute=0, second=0, microsecond=0) for v in hourly}
    assert len(hours) == len(hourly) == 23 * 24 + 1  # one per hour (both edge hours partly inside)
    assert all(v.timestamp.minute == 50 for v in hourly[:-1])  # the newest of each hour (:00 ... :50)
    daily = [v for v in kept if ages[v.version] >= timedelta(days=30) and not v.tags]
    assert len({v.timestamp.date() for v in daily}) == len(daily) == 11  # 10 days and the edge day
    assert all((v.timestamp.hour, v.timestamp.minute) == (23, 50) for v in daily[:-1])
    assert versions[4] in kept  # tagged, 40 days old
    assert versions[-1] in kept


def test_daily_limit_tagged_versions_and_the_latest() -> None:
    versions = history(timedelta(hours=6), timedelta(days=100), tags={3: "old-tag"})
    policy = RetentionPolicy(keep_all=timedelta(days=1), hourly=timedelta(days=2), daily=timedelta(days=60))
    kept = survivors(policy, versions)
    assert all(NOW - v.timestamp < timedelta(days=60) or v.tags for v in kept)
    assert versions[2] in kept
    untagged = RetentionPolicy(keep_all=timedelta(0), hourly=None, daily=timedelta(0), keep_tagged=False)
    assert survivors(untagged, versions) == [versions[-1]]  # the latest always stays
    assert RetentionPolicy().expired([], NOW) == []


def test_policies_that_overlap_backwards_are_refused() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(keep_all=timedelta(days=8), hourly=timedelta(days=7))
    with pytest.raises(ValueError):
        RetentionPolicy(hourly=timedelta(days=30), daily=timedelta(days=10))
    with pytest.raises(ValueError):
        RetentionPolicy(keep_all=timedelta(days=-1))


def disk(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def grow(store: ContextStore, count: int) -> None:
    for i in range(count):
        store.add(text(f"message {i}", run_id="s"))


def test_applying_retention_past_the_window_frees_disk_and_keeps_what_it_promised(
    store: ContextStore, store_path: str
) -> None:
    grow(store, 30)
    store.tag("ten", 10)
    at_ten = [r.id for r in store.at_version(10).records()]
    side = store.branch("side", from_version=20)
    side.add(text("on the side", run_id="s"))
    within = store.apply_retention(RetentionPolicy(), now=datetime.now(timezone.utc))
    assert within.versions_removed == 0  # inside the window nothing goes
    before, latest = disk(store_path), store.version()
    later = datetime.now(timezone.utc) + timedelta(days=8)
    planned = store.apply_retention(RetentionPolicy(), now=later, dry_run=True)
    assert disk(store_path) == before and store.versions()[0].version == 1  # a dry run removes nothing
    report = store.apply_retention(RetentionPolicy(), now=later)
    assert planned.removed == report.removed  # it names exactly what the run then removes
    assert store.apply_retention(RetentionPolicy(), now=later, dry_run=True).versions_removed == 0
    kept = [v.version for v in store.versions()]
    assert (
        10 in kept and latest in kept and 20 in kept
    )  # tag, latest, and the branch's parent (Lance keeps it)
    assert len(kept) <= 4 and report.versions_removed >= 26 and report.bytes_removed > 0
    assert disk(store_path) < before
    assert [r.id for r in store.at_version("ten").records()] == at_ten and store.count() == 30
    assert [r.text for r in side.records()][-1] == "on the side"
    with pytest.raises(VersionNotFoundError):
        store.checkout(5)


def test_a_store_opened_with_a_policy_applies_it_after_writes(tmp_path: Path) -> None:
    everything_but_latest = RetentionPolicy(
        keep_all=timedelta(0), hourly=None, daily=timedelta(0), every=timedelta(0)
    )
    store = ContextStore.open(
        str(tmp_path / "r.lance"), embedder=HashingEmbedder(8), retention=everything_but_latest
    )
    grow(store, 5)
    assert [v.version for v in store.versions()] == [store.version()]
    assert [r.text for r in store.records()] == [f"message {i}" for i in range(5)]
    hourly = RetentionPolicy(every=timedelta(hours=1))
    other = ContextStore.open(str(tmp_path / "h.lance"), embedder=HashingEmbedder(8), retention=hourly)
    grow(other, 3)
    assert len(other.versions()) == 4  # nothing is old yet


def test_retention_on_object_storage(s3_bucket: Any) -> None:
    store = ContextStore.open(s3_bucket.uri("r"), storage_options=s3_bucket.storage_options,
                              embedder=HashingEmbedder(8))  # fmt: skip
    grow(store, 6)
    objects = len(s3_bucket.objects())
    report = store.apply_retention(
        RetentionPolicy(keep_all=timedelta(hours=1), daily=None),
        now=datetime.now(timezone.utc) + timedelta(days=2),
    )
    assert report.versions_removed == 6 and len(store.versions()) == 1
    assert len(s3_bucket.objects()) < objects and store.count() == 6
