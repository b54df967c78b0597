"""copy_model / copy_tree / copy_record: what a read hands out shares nothing a caller can change."""

from __future__ import annotations

import enum
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr

from lance_context import ContextRecord
from lance_context._handouts import copy_record
from lance_context.adapters import copy_model, copy_tree


class Colour(enum.Enum):
    RED = "red"


class Block(BaseModel):
    text: str
    tags: list[str] = []


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    colour: Colour
    blocks: list[Block]
    meta: dict[str, object] = {}
    path: Path | None = None
    _note: dict[str, int] = PrivateAttr(default_factory=dict)


def test_a_copied_model_equals_the_original_and_shares_nothing_mutable() -> None:
    original = Message(
        colour=Colour.RED,
        blocks=[Block(text="hi", tags=["a"])],
        meta={"nested": {"k": [1, 2]}, "empty": {}},
        path=Path("/tmp/x"),
        extra_field={"e": [1]},
    )
    original._note["n"] = 1
    copied = copy_model(original)
    assert copied == original and type(copied) is Message
    assert copied.model_fields_set == original.model_fields_set
    assert copied.colour is Colour.RED  # enum members stay themselves
    copied.blocks[0].text = "changed"
    copied.blocks[0].tags.append("b")
    copied.blocks.append(Block(text="more"))
    copied.meta["nested"]["k"].append(3)  # type: ignore[index]
    copied.meta["empty"]["x"] = 1  # type: ignore[index]
    copied.model_extra["extra_field"]["e"].append(2)  # type: ignore[index]
    copied._note["n"] = 2
    assert original.blocks == [Block(text="hi", tags=["a"])]
    assert original.meta == {"nested": {"k": [1, 2]}, "empty": {}}
    assert original.model_extra == {"extra_field": {"e": [1]}}
    assert original._note == {"n": 1}


def test_copy_tree_copies_containers_and_models_inside_them() -> None:
    tree = {"blocks": [Block(text="x")], "n": 1, "s": "t", "b": b"raw", "none": None}
    copied = copy_tree(tree)
    assert copied == tree
    copied["blocks"][0].text = "y"
    assert tree["blocks"][0].text == "x"  # type: ignore[index,union-attr]
    assert copied["b"] is tree["b"] and copied["s"] is tree["s"]  # immutable leaves are shared


def _cached() -> ContextRecord:
    return ContextRecord(run_id="s", id="r1", text_payload="hi", metadata={"tags": ["a"], "user": {"n": 1}})


def test_a_record_copy_takes_its_metadata_when_first_read_and_shares_nothing() -> None:
    original = _cached()
    copied = copy_record(original)
    assert "metadata" not in vars(copied)  # not copied until read
    assert copied == original and copied.metadata == {"tags": ["a"], "user": {"n": 1}}
    assert copied.metadata is copied.metadata  # copied once, then the record's own
    copied.metadata["tags"].append("b")
    copied.metadata["user"]["n"] = 2
    assert original.metadata == {"tags": ["a"], "user": {"n": 1}}
    again = copy_record(original)
    assert again.metadata == {"tags": ["a"], "user": {"n": 1}}


def test_a_copy_of_an_unread_copy_and_an_assignment_before_reading() -> None:
    original = _cached()
    first = copy_record(original)
    second = copy_record(first)  # first not read yet: both copy from the original's metadata
    second.metadata["tags"].append("x")
    assert first.metadata == {"tags": ["a"], "user": {"n": 1}} and first.metadata is not second.metadata
    replaced = copy_record(original)
    replaced.metadata = {"new": True}
    assert replaced.metadata == {"new": True} and original.metadata["tags"] == ["a"]


def test_an_unread_copy_pickles_and_is_read_from_two_threads_as_one_object() -> None:
    restored = pickle.loads(pickle.dumps(copy_record(_cached())))
    assert restored.metadata == {"tags": ["a"], "user": {"n": 1}}
    for _ in range(50):
        shared = copy_record(_cached())
        with ThreadPoolExecutor(4) as pool:
            seen = list(pool.map(lambda record: record.metadata, [shared] * 4))
        assert all(s is seen[0] for s in seen)
