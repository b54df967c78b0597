"""Reading checkpoints someone else wrote never runs their code.

Each attack writes a record through the plain core API (as anyone who can write to the
store's location could) and then reads it with a fresh saver, the way a new process would.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import pickle
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from lance_context import ContextRecord, ContextStore, UnsafePayloadError
from lance_context.langgraph import LanceCheckpointSaver

EXT_CONSTRUCTOR_SINGLE_ARG = 0  # LangGraph's msgpack extension: (module, name, arg) -> module.name(arg)
KEY = b"0123456789abcdef0123456789abcdef"


def _config(thread: str = "t") -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


def _stored_checkpoint(saver: LanceCheckpointSaver, store: ContextStore, **metadata: Any) -> ContextRecord:
    checkpoint: Checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"note": "hello"}
    saver.put(_config(), checkpoint, metadata, {})  # type: ignore[arg-type]
    [record] = store.records(saver_thread(), roles="checkpoint")
    return record


def saver_thread() -> str:
    return "langgraph.checkpoints:t"


def _shell(marker: Path) -> ormsgpack.Ext:
    return ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, ormsgpack.packb(["os", "system", f"touch {marker}"]))


def _rewrite(store: ContextStore, record: ContextRecord, **changes: Any) -> None:
    store.upsert(dataclasses.replace(record, **changes))


def test_a_msgpack_payload_naming_os_system_is_not_called(store: ContextStore, tmp_path: Path) -> None:
    marker = tmp_path / "pwned-payload"
    record = _stored_checkpoint(LanceCheckpointSaver(store=store), store)
    checkpoint = JsonPlusSerializer().loads_typed(("msgpack", record.binary_payload or b""))
    checkpoint["channel_values"]["note"] = _shell(marker)
    _rewrite(store, record, binary_payload=ormsgpack.packb(checkpoint))

    found = LanceCheckpointSaver(store=ContextStore.open(store.uri)).get_tuple(_config())
    assert not marker.exists()
    assert found is not None
    assert found.checkpoint["channel_values"]["note"] == f"touch {marker}"  # the raw argument, never called


def test_metadata_kept_by_the_serializer_is_not_trusted_either(store: ContextStore, tmp_path: Path) -> None:
    marker = tmp_path / "pwned-metadata"
    record = _stored_checkpoint(LanceCheckpointSaver(store=store), store)
    evil = ormsgpack.packb({"source": _shell(marker)})
    metadata = {**record.metadata, "checkpoint_metadata_serde": ["msgpack", base64.b64encode(evil).decode()]}
    _rewrite(store, record, metadata=metadata)

    found = LanceCheckpointSaver(store=ContextStore.open(store.uri)).get_tuple(_config())
    assert not marker.exists()
    assert found is not None and found.metadata == {"source": f"touch {marker}"}


class _Shell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("field", ["payload", "metadata"])
def test_stored_data_cannot_choose_pickle(store: ContextStore, tmp_path: Path, field: str) -> None:
    marker = tmp_path / f"pwned-pickle-{field}"
    record = _stored_checkpoint(LanceCheckpointSaver(store=store), store)
    evil = pickle.dumps(_Shell(marker))
    if field == "payload":
        _rewrite(store, record, binary_payload=evil, metadata={**record.metadata, "serde_type": "pickle"})
    else:
        kept = ["pickle", base64.b64encode(evil).decode()]
        _rewrite(store, record, metadata={**record.metadata, "checkpoint_metadata_serde": kept})

    saver = LanceCheckpointSaver(store=ContextStore.open(store.uri))
    with pytest.raises(UnsafePayloadError, match="'pickle'"):
        saver.get_tuple(_config())
    with pytest.raises(UnsafePayloadError):
        list(saver.list(_config()))
    assert not marker.exists()


def test_pickle_is_read_only_when_the_caller_opts_in(store: ContextStore) -> None:
    saver = LanceCheckpointSaver(
        store=store, serde=JsonPlusSerializer(pickle_fallback=True, allowed_msgpack_modules=None)
    )
    record = _stored_checkpoint(saver, store)
    state = {"note": "pickled"}
    _rewrite(
        store,
        record,
        binary_payload=pickle.dumps({**empty_checkpoint(), "channel_values": state}),
        metadata={**record.metadata, "serde_type": "pickle"},
    )
    found = saver.get_tuple(_config())
    assert found is not None and found.checkpoint["channel_values"] == state


def test_a_serializer_allowing_every_module_is_refused(store: ContextStore) -> None:
    with pytest.raises(ValueError, match="allowed_msgpack_modules"):
        LanceCheckpointSaver(store=store, serde=JsonPlusSerializer(allowed_msgpack_modules=True))
    with pytest.raises(TypeError, match="default serializer"):
        LanceCheckpointSaver(store=store, serde=JsonPlusSerializer(), allowed_msgpack_modules=[Path])


def test_encrypted_serializer_round_trips_and_refuses_plain_payloads(store: ContextStore) -> None:
    serde = EncryptedSerializer.from_pycryptodome_aes(key=KEY)
    saver = LanceCheckpointSaver(store=store, serde=serde)
    record = _stored_checkpoint(saver, store, source="input")
    assert record.metadata["serde_type"] == "msgpack+aes"
    assert b"hello" not in (record.binary_payload or b"")
    found = LanceCheckpointSaver(store=ContextStore.open(store.uri), serde=serde).get_tuple(_config())
    assert found is not None and found.checkpoint["channel_values"] == {"note": "hello"}

    plain = JsonPlusSerializer().dumps_typed({**empty_checkpoint(), "channel_values": {"note": "forged"}})
    _rewrite(store, record, binary_payload=plain[1], metadata={**record.metadata, "serde_type": plain[0]})
    with pytest.raises(UnsafePayloadError, match="'msgpack'"):
        LanceCheckpointSaver(store=ContextStore.open(store.uri), serde=serde).get_tuple(_config())


@dataclasses.dataclass
class Preference:
    topic: str
    score: int


class PrefState(TypedDict):
    prefs: list[Preference]


def test_user_types_in_graph_state_need_to_be_allowed(store: ContextStore) -> None:
    builder = StateGraph(PrefState)
    builder.add_node("rate", lambda s: {"prefs": [*s["prefs"], Preference("tea", 5)]})
    builder.add_edge(START, "rate")
    builder.add_edge("rate", END)
    allowed = LanceCheckpointSaver(store=store, allowed_msgpack_modules=[Preference])
    builder.compile(checkpointer=allowed).invoke({"prefs": [Preference("sailing", 3)]}, _config("g"))

    fresh = builder.compile(checkpointer=LanceCheckpointSaver(store=ContextStore.open(store.uri)))
    # not allowed: read back as plain data, the class is never imported from stored data
    assert fresh.get_state(_config("g")).values["prefs"] == [
        {"topic": "sailing", "score": 3},
        {"topic": "tea", "score": 5},
    ]
    again = LanceCheckpointSaver(store=ContextStore.open(store.uri), allowed_msgpack_modules=[Preference])
    state = builder.compile(checkpointer=again).get_state(_config("g")).values
    assert state["prefs"] == [Preference("sailing", 3), Preference("tea", 5)]


class Mood(enum.Enum):
    CALM = "calm"


class Profile(BaseModel):
    name: str
    prefs: list[Preference] = []
    mood: Mood = Mood.CALM


class ProfileState(TypedDict):
    profile: Profile
    turns: int


def test_types_this_process_wrote_are_read_back_and_others_stay_data(store: ContextStore) -> None:
    def visit(state: ProfileState) -> dict[str, Any]:
        profile = state.get("profile") or Profile(name="ada")  # an attribute read: a dict would fail here
        return {
            "profile": Profile(name=profile.name, prefs=[*profile.prefs, Preference("tea", 5)]),
            "turns": 1,
        }

    builder = StateGraph(ProfileState)
    builder.add_node("visit", visit)
    builder.add_edge(START, "visit")
    builder.add_edge("visit", END)
    graph = builder.compile(checkpointer=LanceCheckpointSaver(store=store))  # nothing allowed by hand

    graph.invoke({"turns": 0}, _config("p"))
    graph.invoke({"turns": 0}, _config("p"))  # the second turn reads the first one's checkpoint

    profile = graph.get_state(_config("p")).values["profile"]
    assert profile == Profile(name="ada", prefs=[Preference("tea", 5), Preference("tea", 5)])
    assert profile.mood is Mood.CALM
    fresh = LanceCheckpointSaver(store=ContextStore.open(store.uri))  # another process: it wrote none of them
    stored = fresh.get_tuple(_config("p"))
    assert stored is not None and stored.checkpoint["channel_values"]["profile"]["name"] == "ada"


def test_a_serializer_without_an_allowlist_is_used_as_given(
    store: ContextStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Plain:  # any SerializerProtocol: JSON of plain values, nothing to allow
        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            return "json", json.dumps(
                obj, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else list(o)
            ).encode()

        def loads_typed(self, data: tuple[str, bytes]) -> Any:
            return json.loads(data[1])

    saver = LanceCheckpointSaver(store=store, serde=Plain())
    checkpoint: Checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"prefs": [Preference("tea", 5)]}
    saver.put(_config("plain"), checkpoint, {}, {})  # type: ignore[arg-type]
    stored = saver.get_tuple(_config("plain"))
    assert stored is not None and stored.checkpoint["channel_values"]["prefs"] == [
        {"topic": "tea", "score": 5}
    ]
    assert "allowlist" not in caplog.text  # no offer of learned types to a serializer that has none
