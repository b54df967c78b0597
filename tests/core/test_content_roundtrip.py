"""Edge cases of the record model: what add() stores is what get() and records() give back.

Bad input gets a specific error before anything is written (no version, no vector column).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image

from lance_context import (
    ContextRecord,
    ContextStore,
    InvalidRecordError,
    StateMetadata,
    StoreLimits,
    UnsupportedContentError,
)


def roundtrip(store: ContextStore, content: object, **kw: Any) -> tuple[ContextRecord, ContextRecord]:
    record = ContextRecord.from_content(content, run_id="rt", **kw)
    store.add(record)
    found = store.get(record.id)
    assert found is not None
    assert [r for r in store.records("rt") if r.id == record.id] == [found]
    return record, found


def refused(store: ContextStore, record: ContextRecord, match: str) -> None:
    before, count = store.version(), store.count()
    with pytest.raises(InvalidRecordError, match=match):
        store.add(record)
    assert (store.version(), store.count()) == (before, count)


# ---------------------------------------------------------------------- created_at
@pytest.mark.parametrize(
    "created_at",
    [
        dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-1))),
    ],
)
def test_a_time_outside_the_utc_calendar_is_refused_and_never_breaks_reads(
    store: ContextStore, created_at: dt.datetime
) -> None:
    store.add(ContextRecord.from_content("kept", run_id="rt"))
    refused(
        store, ContextRecord.from_content("x", run_id="rt", created_at=created_at), "outside year 1 to 9999"
    )
    assert [r.text for r in store.records("rt")] == ["kept"]


@pytest.mark.parametrize(
    "created_at",
    [
        dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
        dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    ],
)
def test_times_at_the_edges_of_the_calendar_round_trip(store: ContextStore, created_at: dt.datetime) -> None:
    _, found = roundtrip(store, "x", created_at=created_at)
    assert found.created_at == created_at and found.created_at.tzinfo == dt.timezone.utc


# ---------------------------------------------------------------------- metadata and state
@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"a": {1: "x", "1": "y"}}, r"metadata\['a'\] has the key 1 \(int\)"),
        ({"a": [{None: 1}]}, r"metadata\['a'\]\[0\] has the key None"),
        ({"scores": [1.0, float("nan")]}, r"metadata\['scores'\]\[1\] is nan"),
        ({"when": dt.datetime(2024, 1, 1)}, r"metadata\['when'\] is a datetime.datetime"),
    ],
)
def test_metadata_that_would_come_back_changed_is_refused_saying_where(
    store: ContextStore, metadata: dict[str, Any], match: str
) -> None:
    refused(
        store, ContextRecord.from_content("x", run_id="rt", metadata=metadata), f"JSON-serializable: {match}"
    )


def test_metadata_round_trips_exactly(store: ContextStore) -> None:
    metadata = {
        "nested": {"ü✓🌍": [1, {"x": None}]},
        "big": [2**53 + 1, 2**63 + 5, -(2**64) - 1, 10**40],
        "floats": [0.1, 1e308, 5e-324, -0.0],
        "a.b": 1,
        'it\'s "quoted"': True,
        "": "empty key",
    }
    _, found = roundtrip(store, "x", metadata=metadata)
    assert found.metadata == metadata and list(found.metadata) == list(metadata)
    assert found.metadata["big"][1] == 2**63 + 5
    assert roundtrip(store, "y", metadata={})[1].metadata == {}


def test_state_metadata_custom_is_checked_like_metadata(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=None, limits=StoreLimits(max_json_depth=3))
    refused(
        store,
        ContextRecord.from_content("x", state_metadata=StateMetadata(custom={"a": {2: "b"}})),
        r"state_metadata.custom\['a'\] has the key 2",
    )
    refused(
        store,
        ContextRecord.from_content("x", state_metadata=StateMetadata(custom={"a": [[[1]]]})),
        "state_metadata.custom nests deeper than 3 levels",
    )
    refused(
        store,
        ContextRecord.from_content("x", state_metadata=StateMetadata(active_plan_id="plan-\ud800")),
        "active_plan_id is not valid unicode",
    )
    state = StateMetadata(step=2**63 - 1, tokens_used=-(2**63) + 1, custom={"b": 2**70, "c": [[1]]})
    assert roundtrip(store, "y", state_metadata=state)[1].state_metadata == state


@pytest.mark.parametrize(
    "bad",
    [
        {"metadata": {"score": float("inf")}},
        {"state_metadata": StateMetadata(custom={"score": float("nan")})},
    ],
)
def test_a_refused_first_vector_record_adds_no_vector_column(store_path: str, bad: dict[str, Any]) -> None:
    store = ContextStore.open(store_path, embedder=None)
    record = ContextRecord.from_content("x", embedding=np.ones(4, dtype=np.float32), **bad)
    refused(store, record, "is inf|is nan")
    assert [v.operation for v in store.versions()] == ["create"]


# ---------------------------------------------------------------------- JSON content
@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({1: "a", "1": "b"}, r"the content has the key 1 \(int\)"),
        ([{"x": {(1, 2): 3}}], r"the content\[0\]\['x'\] has the key \(1, 2\)"),
        ({"x": [float("-inf")]}, r"the content\['x'\]\[0\] is -inf"),
    ],
)
def test_json_content_that_would_come_back_changed_is_refused(content: object, match: str) -> None:
    with pytest.raises(UnsupportedContentError, match=match):
        ContextRecord.from_content(content)


# ---------------------------------------------------------------------- content types
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ({"a": 1}, "text/plain"),
        ([1, 2], "application/octet-stream"),
        (pa.table({"a": [1]}), "application/json"),
        (pd.DataFrame({"a": [1]}), "text/csv"),
        (Image.new("RGB", (2, 2)), "text/plain"),
    ],
)
def test_a_content_type_that_does_not_describe_the_content_is_refused(
    content: object, content_type: str
) -> None:
    with pytest.raises(UnsupportedContentError, match=f"content_type '{content_type}' does not describe"):
        ContextRecord.from_content(content, content_type=content_type)


def test_an_image_content_type_chooses_the_format_or_is_refused(store: ContextStore) -> None:
    image = Image.new("RGB", (3, 2), "teal")
    record, found = roundtrip(store, image, content_type="image/tiff")
    assert record.content_type == "image/tiff" and found.content.tobytes() == image.tobytes()
    assert ContextRecord.from_content(image, content_type="image/png").content_type == "image/png"
    with pytest.raises(UnsupportedContentError, match="cannot be stored as 'image/jpeg' without changing"):
        ContextRecord.from_content(image, content_type="image/jpeg")


# ---------------------------------------------------------------------- images
def _image(mode: str) -> Image.Image:
    size = (5, 3)
    if mode in ("I;16", "I;16B", "I", "F"):
        data = np.arange(15).reshape(3, 5) * {"I;16": 4000, "I;16B": 4000, "I": -70000, "F": 0.37}[mode]
        image = Image.new(mode, size)
        image.putdata(data.ravel().tolist())
        return image
    bands = len(Image.new(mode, (1, 1)).getbands())
    pixels = (np.arange(15 * bands) * 37 % 256).astype(np.uint8).reshape(3, 5, bands)
    image = Image.frombytes(mode, size, (pixels[..., 0] % 2 if mode == "1" else pixels).tobytes())
    if mode == "P":
        image.putpalette([i * 7 % 256 for i in range(768)])
        image.info["transparency"] = bytes(range(0, 256, 8))
    return image


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B", "I", "F", "CMYK", "YCbCr", "LAB"]
)
def test_images_of_every_mode_come_back_pixel_identical(store: ContextStore, mode: str) -> None:
    image = _image(mode)
    _, found = roundtrip(store, image)
    decoded = found.content
    assert (decoded.mode, decoded.size, decoded.tobytes()) == (image.mode, image.size, image.tobytes())
    if mode == "P":
        assert decoded.getpalette() == image.getpalette()
        assert decoded.info["transparency"] == image.info["transparency"]


@pytest.mark.parametrize("mode", ["RGBX", "RGBa", "La", "HSV"])
def test_an_image_mode_no_format_holds_exactly_is_refused(mode: str) -> None:
    with pytest.raises(UnsupportedContentError, match=f"a {mode} image cannot be stored exactly"):
        ContextRecord.from_content(Image.new(mode, (2, 2)))


def _frames(fmt: str) -> Image.Image:
    frames = [Image.new("L", (4, 3), shade) for shade in (0, 90, 180)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:])
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PNG"])
def test_every_frame_of_an_animation_or_multipage_image_is_kept(store: ContextStore, fmt: str) -> None:
    image = _frames(fmt)
    image.seek(1)
    record, found = roundtrip(store, image)
    assert image.tell() == 1  # the caller's image is left on its frame
    decoded = found.content
    assert record.content_type == f"image/{fmt.lower()}"
    assert getattr(decoded, "n_frames", 1) == getattr(image, "n_frames", 1) == 3
    for index in range(3):
        image.seek(index)
        decoded.seek(index)
        assert decoded.convert("L").tobytes() == image.convert("L").tobytes()


# ---------------------------------------------------------------------- tables
def test_arrow_tables_of_every_kind_keep_their_schema(store: ContextStore) -> None:
    table = pa.table(
        {
            "lst": pa.array([[1, 2], [], None], pa.list_(pa.int32())),
            "st": pa.array([{"x": 1, "y": "a"}, None, {"x": None, "y": "b"}]),
            "dic": pa.array(["a", "b", "a"]).dictionary_encode(),
            "ts": pa.array([dt.datetime(2020, 1, 1)] * 3, pa.timestamp("ns", tz="Asia/Tokyo")),
            "dec": pa.array([decimal.Decimal("1.23"), None, decimal.Decimal("-9.99")], pa.decimal128(10, 2)),
            "ls": pa.array(["x", "y", None], pa.large_string()),
            "map": pa.array([[("a", 1)], [], None], pa.map_(pa.string(), pa.int64())),
        },
        metadata={"source": "ünïcode ✓"},
    )
    for content in (table, table.slice(0, 0), table.combine_chunks().to_batches()[0], pa.table({})):
        decoded = roundtrip(store, content)[1].content
        assert type(decoded) is type(content) and decoded.equals(content)
        assert decoded.schema.equals(content.schema, check_metadata=True)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"o": [1, "a"]}), "ArrowInvalid"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "Duplicate column names"),
    ],
)
def test_a_dataframe_arrow_cannot_hold_is_refused_clearly(frame: pd.DataFrame, match: str) -> None:
    with pytest.raises(UnsupportedContentError, match=f"this DataFrame cannot be stored.*{match}"):
        ContextRecord.from_content(frame)


# ---------------------------------------------------------------------- limits
def test_limits_hold_exactly_at_the_limit_and_refuse_one_over(store_path: str) -> None:
    limits = StoreLimits(max_record_bytes=12, max_json_depth=3, max_image_pixels=6)
    store = ContextStore.open(store_path, embedder=None, limits=limits)
    store.add(ContextRecord.from_content("ü" * 6))  # 12 bytes of UTF-8
    refused(store, ContextRecord.from_content("ü" * 6 + "x"), "holds 13 bytes, over the store's limit of 12")
    store.add(ContextRecord.from_content([[[]]]))
    refused(store, ContextRecord.from_content([[[[]]]]), "JSON content nests deeper than 3 levels")
    store.add(ContextRecord.from_content("x", metadata={"a": {"b": {}}}))
    refused(store, ContextRecord.from_content("x", metadata={"a": {"b": {"c": {}}}}), "metadata nests deeper")
    big = StoreLimits(max_record_bytes=10_000, max_image_pixels=6)
    store = ContextStore.open(store_path, embedder=None, limits=big)
    store.add(ContextRecord.from_content(Image.new("L", (3, 2))))
    refused(
        store, ContextRecord.from_content(Image.new("L", (7, 1))), "image of 7 pixels is over the limit of 6"
    )
