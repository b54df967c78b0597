"""Seeded random round trips through every transfer path: what comes out is what went in.

A store is filled with random records of every content kind (odd text, bytes with a
content type, images in several modes and formats, Arrow tables, DataFrames, JSON),
odd ids, sessions and roles, nested metadata (unicode keys, big ints, subnormal floats,
``-0.0``, ``None``, empty containers), some caller vectors, ids added twice, deletes and
in-place upserts. Each path (a snapshot opened directly, ``import_`` as a copy and as a
merge, JSON Lines and Parquet through the command line, encrypted stores) must give
back every record exactly: each field with its type, the content decoded to the same
object, the vector bit for bit, and each session's order. A merge into a store follows
the documented rule: a record the store holds is replaced in its place, new records
follow in the source's order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image

from lance_context import (
    ContextRecord,
    ContextStore,
    EncryptionPolicy,
    HashingEmbedder,
    Relationship,
    StateMetadata,
    UnsupportedContentError,
)
from lance_context._cli import main

State = dict[str, list[ContextRecord]]
PIECES = ["a/b", "x'y", 'q"q', "%_*", "ü✓", "🌍", "\\", "\t", "a\nb", "--", "$and", "{}", "null", "\u200b"]
PIECES += ["e\u0301", "é", "Ω≈", "a", "B", "7", " "]
DIMENSION = 16


# ---------------------------------------------------------------------- random records
def odd(rng: random.Random, n: int = 6) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, n)))


def random_text(rng: random.Random) -> str:
    return rng.choice(
        [
            lambda: odd(rng, 20),
            lambda: f"nul\x00inside {odd(rng)}\x00",
            lambda: "long " + "🌍ü\r\n" * rng.randint(3000, 8000),
            lambda: "",
            lambda: "\u2028line\u2029sep\r" + odd(rng),
            lambda: "family 👨\u200d👩\u200d👧 " + odd(rng),
        ]
    )()


def random_image(rng: random.Random) -> tuple[Image.Image, str | None]:
    mode, fmt = rng.choice(
        [("RGB", None), ("RGBA", "image/png"), ("L", None), ("1", None), ("LA", None), ("CMYK", None),
         ("I;16", None), ("F", None), ("RGB", "image/webp"), ("RGB", "image/bmp"), ("RGB", "image/tiff")]
    )  # fmt: skip
    size = (rng.randint(1, 5), rng.randint(1, 5))
    if mode in ("I;16", "F"):
        return Image.new(mode, size, rng.randrange(256)), fmt
    bands = len(Image.new(mode, (1, 1)).getbands())
    top = 2 if mode == "1" else 256
    image = Image.new(mode, size)
    pixels = [tuple(rng.randrange(top) for _ in range(bands)) for _ in range(size[0] * size[1])]
    image.putdata([p[0] for p in pixels] if bands == 1 else pixels)  # type: ignore[arg-type]
    return image, fmt


def random_metadata(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    values: list[Callable[[], Any]] = [
        lambda: None, lambda: 2**63 + rng.randrange(9), lambda: -(2**70), lambda: rng.random() * 1e300,
        lambda: 5e-324, lambda: -0.0, lambda: odd(rng), lambda: {}, lambda: [], lambda: True, lambda: 1,
    ]  # fmt: skip
    if depth < 2:
        values += [
            lambda: random_metadata(rng, depth + 1),
            lambda: [random_metadata(rng, depth + 1), 1.0, None],
        ]
    return {odd(rng, 3): rng.choice(values)() for _ in range(rng.randint(0, 4))}


def random_content(rng: random.Random) -> tuple[object, dict[str, Any]]:
    kind = rng.randrange(7)
    if kind == 0:
        return random_text(rng), {}
    if kind == 1:
        blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 48)))
        chosen = rng.choice(
            [None, "application/x-odd", "audio/wav; rate=8000", "text/plain; charset=latin-1"]
        )
        return blob, {"content_type": chosen}
    if kind == 2:
        image, fmt = random_image(rng)
        return image, {"content_type": fmt, "text": rng.choice([None, f"caption {odd(rng)}"])}
    if kind == 3:
        columns = {"a": [rng.randrange(10**12) for _ in range(3)], odd(rng, 2): [odd(rng) for _ in range(3)]}
        return pa.table({**columns, "f": [0.5, None, float("inf")]}), {}
    if kind == 4:
        when = pd.to_datetime(
            ["2020-01-01T00:00:00", "1969-12-31T23:59:59.000001"], utc=True, format="ISO8601"
        )
        return pd.DataFrame({"x": [1, 2], "y": ["ü", None], "t": when}), {}
    if kind == 5:
        return {odd(rng): [1, 2**63, None, {"z": odd(rng)}], "n": -0.0, "e": {}, "l": []}, {}
    return [odd(rng), 1.5, None, [], {}], {}


def random_record(rng: random.Random, sessions: list[str], ids: Iterator[str]) -> ContextRecord:
    content, options = random_content(rng)
    fields: dict[str, Any] = {
        "role": rng.choice(["user", "assistant", "tool", "system", odd(rng, 2)]),
        "run_id": rng.choice(sessions),
        "metadata": random_metadata(rng),
    }
    if rng.random() < 0.5:
        fields["id"] = next(ids)
    if rng.random() < 0.3:
        zone = dt.timezone(dt.timedelta(minutes=rng.choice([0, 330, -600])))
        fields["created_at"] = dt.datetime(
            rng.randint(2, 9998), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
            microsecond=rng.randrange(10**6), tzinfo=zone,
        )  # fmt: skip
    if rng.random() < 0.2:
        fields["state_metadata"] = StateMetadata(step=rng.randint(0, 5), custom={odd(rng): [2**64, None]})
    if rng.random() < 0.2:
        fields["relationships"] = [Relationship(f"t-{odd(rng)}", "cites", rng.choice([None, 0.25]))]
    if rng.random() < 0.25:
        fields["embedding"] = np.asarray([rng.uniform(-1, 1) for _ in range(DIMENSION)], dtype=np.float32)
    chosen = {name: value for name, value in options.items() if value is not None}
    return ContextRecord.from_content(content, **chosen, **fields)


def build(uri: str, seed: int, encryption: EncryptionPolicy | None = None) -> ContextStore:
    """A store grown by random writes; the tag ``mid`` names a version in the middle."""
    rng = random.Random(seed)
    store = ContextStore.open(uri, embedder=HashingEmbedder(DIMENSION), encryption=encryption)
    sessions = [f"{odd(rng, 4)}-{n}" for n in range(3)] + ["plain"]
    counter = itertools.count()
    ids = (f"id{next(counter)}-{odd(rng, 3)}" for _ in itertools.count())
    made: list[ContextRecord] = []
    for step in range(6):
        batch: dict[str, ContextRecord] = {}
        while len(batch) < rng.randint(2, 5):
            try:
                record = random_record(rng, sessions, ids)
            except UnsupportedContentError:  # an image its asked format cannot hold exactly
                continue
            batch[record.id] = record
        fresh, op = list(batch.values()), rng.randrange(4) if made else 0
        if op == 1:  # an id added again: reads show its newest copy, at its place
            old = rng.choice(made)
            store.add([*fresh, ContextRecord.from_content(f"again {odd(rng)}", id=old.id, run_id=old.run_id)])
        elif op == 2:  # replaced in its place
            old = rng.choice(made)
            again = ContextRecord.from_content(
                f"up {odd(rng)}", id=old.id, run_id=old.run_id, metadata={"u": 1}
            )
            store.upsert([again, *fresh], keep_order=True)
        else:
            store.add(fresh)
            if op == 3:
                store.delete(ids=[rng.choice(made).id])
        made.extend(fresh)
        if step == 2:
            store.tag("mid")
    return store


# ---------------------------------------------------------------------- exact comparison
def typed(value: Any) -> Any:
    """``value`` with every type spelled out: 1, 1.0 and True, or 0.0 and -0.0, differ."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def decoded(record: ContextRecord) -> Any:
    content = record.content
    if isinstance(content, Image.Image):
        return ("image", content.mode, content.size, content.tobytes(), content.format)
    if isinstance(content, pa.Table):
        return ("table", content.schema.to_string(show_schema_metadata=False), typed(content.to_pylist()))
    if isinstance(content, pd.DataFrame):
        return ("frame", repr(content.dtypes.to_dict()), content.to_json(date_format="iso", date_unit="ns"))
    return typed(content)


def exact(record: ContextRecord, vectors: bool = True) -> tuple[Any, ...]:
    vector = record.embedding
    return (
        record.id, record.run_id, record.role, record.created_at.isoformat(), record.created_at.tzinfo,
        record.content_type, typed(record.text_payload), typed(record.binary_payload),
        typed(None if record.state_metadata is None else dataclasses.asdict(record.state_metadata)),
        typed(record.metadata), typed([dataclasses.asdict(r) for r in record.relationships]),
        None if vector is None or not vectors else (str(vector.dtype), vector.tobytes()),
        decoded(record),
    )  # fmt: skip


def sessions(store: ContextStore) -> State:
    return {run_id: store.records(run_id) for run_id in store.run_ids()}


def assert_same(got: State, want: State) -> None:
    assert sorted(got) == sorted(want)
    for run_id, records in want.items():
        assert [r.id for r in got[run_id]] == [r.id for r in records], run_id
        for mine, theirs in zip(got[run_id], records, strict=True):
            assert exact(mine) == exact(theirs), mine.id


def merged(into: State, source: State) -> State:
    """What a merge gives: a held record replaced in its place, new ones after, in order."""
    replacing = {r.id: r for records in source.values() for r in records}
    held = {r.id for records in into.values() for r in records}
    out = {
        run_id: [replacing.get(r.id, r) for r in into.get(run_id, [])]
        + [r for r in source.get(run_id, []) if r.id not in held]
        for run_id in {*into, *source}
    }
    return {run_id: records for run_id, records in out.items() if records}


def opened(uri: str | Path, encryption: EncryptionPolicy | None = None) -> ContextStore:
    return ContextStore.open(str(uri), embedder=None, encryption=encryption)


def cli(*args: str | Path) -> None:
    assert main([str(a) for a in args]) == 0, args


def seeded_store(tmp_path: Path, seed: int) -> ContextStore:
    store = build(str(tmp_path / "source.lance"), seed)
    store.branch("what-if", from_version="mid").add(ContextRecord.from_content("only here", run_id="plain"))
    return store


# ---------------------------------------------------------------------- the paths
@pytest.mark.parametrize("seed", [0, 1])
def test_snapshots_and_their_imports_give_back_every_record_exactly(tmp_path: Path, seed: int) -> None:
    store = seeded_store(tmp_path, seed)
    latest, middle = sessions(store), sessions(store.at_version("mid"))
    on_branch = sessions(opened(store.uri).checkout_branch("what-if"))
    store.export(str(tmp_path / "latest.lance"))
    store.export(str(tmp_path / "mid.lance"), tag="mid")
    store.export(str(tmp_path / "branch.lance"), branch="what-if")
    store.export(str(tmp_path / "history.lance"), version=2, history=True)
    assert_same(sessions(opened(tmp_path / "latest.lance")), latest)
    assert_same(sessions(opened(tmp_path / "mid.lance")), middle)
    assert_same(sessions(opened(tmp_path / "branch.lance")), on_branch)
    history = opened(tmp_path / "history.lance")
    for info in history.versions():
        assert_same(sessions(history.at_version(info.version)), sessions(store.at_version(info.version)))
    copied = ContextStore.import_(str(tmp_path / "history.lance"), into=str(tmp_path / "copy.lance"))
    assert_same(sessions(copied), latest)
    assert_same(sessions(copied.at_version("mid")), middle)
    one = ContextStore.import_(str(tmp_path / "history.lance"), into=str(tmp_path / "one.lance"), version=3)
    assert_same(sessions(one), sessions(store.at_version(3)))
    target = ContextStore.open(str(tmp_path / "target.lance"), embedder=HashingEmbedder(DIMENSION))
    target.add(ContextRecord.from_content("held", run_id="plain", id="held"))
    before = sessions(target)
    ContextStore.import_(str(tmp_path / "mid.lance"), into=target)
    assert_same(sessions(target), merged(before, middle))
    ContextStore.import_(str(tmp_path / "history.lance"), into=target)  # the latest over the middle
    assert_same(sessions(opened(target.uri)), merged(merged(before, middle), latest))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_exported_files_and_cli_snapshots_give_back_every_record_exactly(tmp_path: Path, fmt: str) -> None:
    store = seeded_store(tmp_path, 2)
    source = store.uri
    latest, middle = sessions(store), sessions(store.at_version("mid"))
    first = sorted(latest)[0]
    cli("export", source, tmp_path / f"all.{fmt}")
    cli("export", source, tmp_path / f"one.{fmt}", "-s", first)
    cli("export", source, tmp_path / f"mid.{fmt}", "-t", "mid")
    cli("export", source, tmp_path / f"branch.{fmt}", "--branch", "what-if")
    for name in ("all", "one", "mid", "branch"):
        cli("import", tmp_path / f"{name}.lance", tmp_path / f"{name}.{fmt}")
    assert_same(sessions(opened(tmp_path / "all.lance")), latest)
    assert_same(sessions(opened(tmp_path / "one.lance")), {first: latest[first]})
    assert_same(sessions(opened(tmp_path / "mid.lance")), middle)
    assert_same(
        sessions(opened(tmp_path / "branch.lance")), sessions(opened(source).checkout_branch("what-if"))
    )
    cli("import", tmp_path / "mid.lance", tmp_path / f"all.{fmt}", "--yes")  # into a store holding some
    assert_same(sessions(opened(tmp_path / "mid.lance")), merged(middle, latest))
    cli("snapshot", source, tmp_path / "snap-mid.lance", "-t", "mid")
    cli("snapshot", source, tmp_path / "snap.lance")
    cli("import-snapshot", tmp_path / "restored.lance", tmp_path / "snap-mid.lance")
    assert_same(sessions(opened(tmp_path / "restored.lance")), middle)
    cli("import-snapshot", tmp_path / "restored.lance", tmp_path / "snap.lance", "--yes")
    assert_same(sessions(opened(tmp_path / "restored.lance")), merged(middle, latest))


def test_an_imported_file_replaces_held_records_in_their_place(tmp_path: Path) -> None:
    uri = str(tmp_path / "chat.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(DIMENSION))
    store.add([ContextRecord.from_content(f"turn {i}", run_id="chat", id=f"t{i}") for i in range(2)])
    cli("export", uri, tmp_path / "backup.jsonl")
    store.add(ContextRecord.from_content("turn 2", run_id="chat", id="t2"))
    cli("import", uri, tmp_path / "backup.jsonl", "--yes")  # the backup of the first two turns
    assert [r.text for r in opened(uri).records("chat")] == ["turn 0", "turn 1", "turn 2"]


def test_encrypted_stores_export_and_import_every_record_exactly(tmp_path: Path) -> None:
    key, other = bytes(range(32)), bytes(range(1, 33))
    sealed, resealed = EncryptionPolicy(key=key), EncryptionPolicy(key=other)
    store = build(str(tmp_path / "sealed.lance"), 3, encryption=sealed)
    latest, middle = sessions(store), sessions(store.at_version("mid"))
    store.export(str(tmp_path / "snap.lance"))
    assert_same(sessions(opened(tmp_path / "snap.lance", sealed)), latest)
    copied = ContextStore.import_(
        str(tmp_path / "snap.lance"), into=str(tmp_path / "copy.lance"), encryption=sealed
    )
    assert_same(sessions(copied), latest)
    for policy, name in ((None, "plain"), (resealed, "other-key")):
        target = ContextStore.open(
            str(tmp_path / f"{name}.lance"), embedder=HashingEmbedder(DIMENSION), encryption=policy
        )
        target.add(ContextRecord.from_content("held", run_id="plain", id="held"))
        before = sessions(target)
        ContextStore.import_(str(tmp_path / "snap.lance"), into=target, source_encryption=sealed)
        assert_same(sessions(opened(target.uri, policy)), merged(before, latest))
    (tmp_path / "key").write_bytes(key)
    (tmp_path / "other").write_bytes(other)
    cli("export", store.uri, tmp_path / "mid.parquet", "-t", "mid", "--key-file", tmp_path / "key")
    cli("import", tmp_path / "from-file.lance", tmp_path / "mid.parquet", "--key-file", tmp_path / "other")
    assert_same(sessions(opened(tmp_path / "from-file.lance", resealed)), middle)
    cli("import", tmp_path / "plain-file.lance", tmp_path / "mid.parquet")
    assert_same(sessions(opened(tmp_path / "plain-file.lance")), middle)
