"""Multimodal content goes in as Python objects and comes back as the same kind of object."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image

from lance_context import ContextRecord, ContextStore, InvalidRecordError, UnsupportedContentError


def roundtrip(store: ContextStore, content: object, **kw: object) -> ContextRecord:
    record = ContextRecord.from_content(content, run_id="codec", **kw)  # type: ignore[arg-type]
    store.add(record)
    found = store.get(record.id)
    assert found is not None
    return found


def test_text(store: ContextStore) -> None:
    found = roundtrip(store, "héllo 'world' \\ %_ 🌍")
    assert found.content == "héllo 'world' \\ %_ 🌍"
    assert found.content_type == "text/plain"


def test_text_with_given_type(store: ContextStore) -> None:
    found = roundtrip(store, "# Title", content_type="text/markdown")
    assert (found.content_type, found.content) == ("text/markdown", "# Title")


def test_json(store: ContextStore) -> None:
    value = {"b": [1, 2.5, None, {"x": "y"}], "a": True}
    found = roundtrip(store, value)
    assert found.content_type == "application/json"
    assert found.content == value
    assert list(found.content) == ["b", "a"]  # key order kept


def test_list_json(store: ContextStore) -> None:
    assert roundtrip(store, [1, "two", {"3": 3}]).content == [1, "two", {"3": 3}]


def test_bytes_default_and_given_type(store: ContextStore) -> None:
    data = bytes(range(256))
    assert roundtrip(store, data).content == data
    assert roundtrip(store, data).content_type == "application/octet-stream"
    pdf = roundtrip(store, b"%PDF-1.7", content_type="application/pdf")
    assert (pdf.content_type, pdf.content) == ("application/pdf", b"%PDF-1.7")
    assert roundtrip(store, bytearray(b"ab")).content == b"ab"


def test_image_without_format_is_png(store: ContextStore) -> None:
    image = Image.new("RGB", (3, 2), color="teal")
    found = roundtrip(store, image)
    assert found.content_type == "image/png"
    decoded = found.content
    assert isinstance(decoded, Image.Image)
    assert decoded.size == (3, 2)
    assert decoded.convert("RGB").tobytes() == image.tobytes()


def test_bytes_stored_as_an_image_type_that_pillow_cannot_read_come_back_as_bytes(
    store: ContextStore,
) -> None:
    found = roundtrip(store, b"not a png", content_type="image/png")
    assert (found.content_type, found.content) == ("image/png", b"not a png")


def test_image_keeps_its_format(store: ContextStore) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color="red").save(buffer, format="GIF")
    image = Image.open(io.BytesIO(buffer.getvalue()))
    found = roundtrip(store, image, text="a red square")
    assert found.content_type == "image/gif"
    assert found.text == "a red square"
    assert found.content.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_a_webp_image_keeps_every_pixel(store: ContextStore) -> None:
    pixels = bytes((x * 7 + y * 13) % 256 for y in range(32) for x in range(32 * 3))
    original = Image.frombytes("RGB", (32, 32), pixels)
    buffer = io.BytesIO()
    original.save(buffer, format="WEBP", lossless=True)
    found = roundtrip(store, Image.open(io.BytesIO(buffer.getvalue())))
    assert found.content_type == "image/webp"  # its own format, saved losslessly (WebP's default is lossy)
    assert found.content.convert("RGB").tobytes() == pixels


@pytest.mark.parametrize("mode", ["CMYK", "F", "I;16"])
def test_image_modes_png_cannot_hold_are_stored_exactly(store: ContextStore, mode: str) -> None:
    image = Image.new(mode, (3, 2), color=7 if mode != "CMYK" else (10, 20, 30, 40))
    found = roundtrip(store, image)
    assert found.content.mode == image.mode and found.content.tobytes() == image.tobytes()


def test_bytes_labelled_as_an_arrow_stream_must_be_one(store: ContextStore) -> None:
    before = store.version()
    with pytest.raises(InvalidRecordError, match="its bytes are not an Arrow IPC stream"):
        store.add(
            ContextRecord.from_content(b"garbage", content_type="application/vnd.apache.arrow.stream")
        )
    assert store.version() == before


def test_arrow_table_and_batch(store: ContextStore) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", None]})
    found = roundtrip(store, table)
    assert found.content_type.startswith("application/vnd.apache.arrow.stream")
    assert isinstance(found.content, pa.Table)
    assert found.content.equals(table)
    batch = table.to_batches()[0]
    decoded = roundtrip(store, batch).content
    assert isinstance(decoded, pa.RecordBatch)
    assert decoded.equals(batch)


def test_pandas_dataframe(store: ContextStore) -> None:
    frame = pd.DataFrame({"city": ["Kyoto", "Lisbon"], "temp": [18.5, 21.0]})
    decoded = roundtrip(store, frame).content
    assert isinstance(decoded, pd.DataFrame)
    pd.testing.assert_frame_equal(decoded, frame)


@pytest.mark.parametrize("bad", [object(), 3.5, {1, 2}, {"k": object()}])
def test_unsupported_content_is_rejected_and_nothing_written(store: ContextStore, bad: object) -> None:
    before = store.version()
    with pytest.raises(UnsupportedContentError) as info:
        store.add(ContextRecord.from_content(bad, run_id="codec"))
    assert "supported" in str(info.value) or "JSON" in str(info.value)
    assert store.version() == before
    assert store.count() == 0


def test_unsupported_message_names_type() -> None:
    with pytest.raises(UnsupportedContentError, match="builtins.float.*str, dict, list, bytes"):
        ContextRecord.from_content(1.5)


def test_json_text_is_searchable_text(store: ContextStore) -> None:
    found = roundtrip(store, {"city": "Kyoto"})
    assert json.loads(found.text or "") == {"city": "Kyoto"}


def test_plain_json_makes_any_value_strict_json() -> None:
    from lance_context.adapters import plain_json

    odd = {"score": float("nan"), "runs": [float("inf"), 1.5], "when": dt.date(2024, 5, 1), "n": 2}
    plain = plain_json(odd)
    assert plain == {"score": "nan", "runs": ["inf", 1.5], "when": "datetime.date(2024, 5, 1)", "n": 2}
    json.dumps(plain, allow_nan=False)  # strict parsers read it
