"""copy_model / copy_tree: what an adapter hands each read shares nothing a caller can change."""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PrivateAttr

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
