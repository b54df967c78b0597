"""ChatMessage <-> record: lossless round trips and clear refusals."""

from __future__ import annotations

import io

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from lance_context import ContextRecord, ContextStore, InvalidRecordError, UnsupportedContentError
from lance_context.llama_index import LanceMemory, message_to_record, record_to_message

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(200))


def roundtrip(store: ContextStore, messages: list[ChatMessage]) -> list[ChatMessage]:
    memory = LanceMemory.from_defaults(session_id="s", store=store)
    memory.put_messages(messages)
    reopened = ContextStore.open(store.uri)
    return LanceMemory.from_defaults(session_id="s", store=reopened).get_all()


def test_text_tool_calls_and_kwargs_round_trip(store: ContextStore) -> None:
    messages = [
        ChatMessage(role="system", content="You are terse."),
        ChatMessage(role="user", content="Weather in Paris?", additional_kwargs={"name": "ana", "n": 2**70}),
        ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="call the tool"),
                ToolCallBlock(tool_call_id="call-1", tool_name="weather", tool_kwargs={"city": "Paris"}),
            ],
            additional_kwargs={
                "tool_calls": [
                    ToolSelection(tool_id="call-1", tool_name="weather", tool_kwargs={"city": "Paris"})
                ]
            },
        ),
        ChatMessage(
            role="tool", content="sunny", additional_kwargs={"tool_call_id": "call-1", "name": "weather"}
        ),
        ChatMessage(role="assistant", content=""),
        ChatMessage(role="developer", content="dev note"),
        ChatMessage(role="chatbot", content="legacy"),
    ]
    back = roundtrip(store, messages)
    assert back == messages
    tool_calls = back[2].additional_kwargs["tool_calls"]
    assert isinstance(tool_calls[0], ToolSelection) and tool_calls[0].tool_kwargs == {"city": "Paris"}


def test_python_values_in_kwargs_keep_their_types(store: ContextStore) -> None:
    kwargs = {
        "raw": b"\x00\xff",
        "pair": (1, "a", (2.5, None)),
        "nested": {"__lance_context__": "bytes", "data": "not really"},
        "deep": [{"x": [1, 2, {"y": True}]}],
        "unicode": "caf\u00e9 \U0001f600",
    }
    back = roundtrip(store, [ChatMessage(role="user", content="hi", additional_kwargs=kwargs)])
    assert back[0].additional_kwargs == kwargs
    assert isinstance(back[0].additional_kwargs["pair"], tuple)


def test_image_bytes_are_stored_as_binary_payload(store: ContextStore) -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="what is in this picture?"),
            ImageBlock(image=PNG, detail="high"),
            ImageBlock(image=JPEG),
            ImageBlock(url="https://example.com/cat.png"),
        ],
    )
    back = roundtrip(store, [message])
    assert back == [message]
    record = store.records("llama_index.memory::s")[0]
    assert record.content_type == "image/png"
    assert record.binary_payload == PNG
    assert record.text_payload == "what is in this picture?"
    assert "iVBOR" not in str(record.metadata)  # the lifted image is not kept as base64 too


def test_image_from_a_file_object_and_other_media_round_trip(store: ContextStore) -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            ImageBlock(image=io.BytesIO(PNG), image_mimetype="image/png"),
            AudioBlock(audio=b"RIFF....WAVEfmt ", format="wav"),
            DocumentBlock(data=b"%PDF-1.4 hello", document_mimetype="application/pdf", title="doc"),
        ],
    )
    back = roundtrip(store, [message])[0]
    assert store.records("llama_index.memory::s")[0].binary_payload == PNG
    image = back.blocks[0]
    assert isinstance(image, ImageBlock) and image.resolve_image().read() == PNG
    assert back.blocks[1:] == message.blocks[1:]


def test_image_path_that_disappeared_does_not_make_history_unreadable(store: ContextStore, tmp_path) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    memory = LanceMemory.from_defaults(session_id="s", store=store)
    memory.put(ChatMessage(role="user", blocks=[TextBlock(text="see file"), ImageBlock(path=picture)]))
    picture.unlink()
    back = memory.get_all()
    assert back[0].content == "see file"
    assert str(back[0].blocks[1].path) == str(picture)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"obj": object()},
        {"when": {1, 2}},
        {"bad_key": {1: "int key"}},
        {"nan": float("nan")},
    ],
)
def test_unserializable_kwargs_are_refused_and_nothing_is_written(store: ContextStore, kwargs: dict) -> None:
    memory = LanceMemory.from_defaults(session_id="s", store=store)
    good = ChatMessage(role="user", content="fine")
    bad = ChatMessage(role="user", content="bad", additional_kwargs=kwargs)
    with pytest.raises(InvalidRecordError, match="additional_kwargs"):
        memory.put_messages([good, bad])
    assert memory.get_all() == []
    assert store.count() == 0


def test_non_messages_and_unknown_roles_are_refused(store: ContextStore) -> None:
    memory = LanceMemory.from_defaults(session_id="s", store=store)
    with pytest.raises(UnsupportedContentError, match="ChatMessage"):
        memory.put({"role": "user", "content": "hi"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChatMessage(role="wizard", content="hi")  # LlamaIndex itself refuses it
    smuggled = ChatMessage.model_construct(role="wizard", blocks=[TextBlock(text="x")], additional_kwargs={})
    with pytest.raises(InvalidRecordError, match="unknown message role 'wizard'"):
        memory.put(smuggled)
    assert store.count() == 0


def test_records_from_other_writers_read_as_messages(store: ContextStore) -> None:
    session = LanceMemory.from_defaults(session_id="s", store=store).run_id
    store.add(
        [
            ContextRecord.from_content("from langchain", role="human", run_id=session),
            ContextRecord.from_content("an answer", role="ai", run_id=session),
            ContextRecord.from_content(
                PNG, role="user", run_id=session, content_type="image/png", text="a photo"
            ),
            ContextRecord.from_content({"step": 1}, role="observation", run_id=session),
        ]
    )
    messages = LanceMemory.from_defaults(session_id="s", store=store).get_all()
    assert [m.role for m in messages] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.USER]
    assert messages[0].content == "from langchain"
    image = messages[2].blocks[1]
    assert isinstance(image, ImageBlock) and image.resolve_image().read() == PNG


def test_record_helpers_are_inverse() -> None:
    message = ChatMessage(role="assistant", content="ok", additional_kwargs={"k": [1, (2, 3)]})
    record = message_to_record(message, "run-1")
    assert record.run_id == "run-1" and record.role == "assistant" and record.text_payload == "ok"
    assert record_to_message(record) == message
