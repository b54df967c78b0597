"""An export file carries what a chat adapter indexed and embedded, so an import searches alike.

A chat history's turns are full-text indexed with the speaker, the date and the turns
before them, and embedded as ``Speaker: text``. An export that carried only the message
would come back searchable by the message's own words alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from lance_context import ContextRecord, ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory

from .conftest import InProcess


def _indexed(uri: str) -> dict[str, tuple[str | None, str | None, str | None]]:
    store = ContextStore.open(uri, embedder=None)
    return {r.id: (r.text_payload, r.search_text, r.embed_text) for r in store.records(index_text=True)}


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_an_exported_chat_imports_with_its_index_text(
    in_process: InProcess, tmp_path: Path, suffix: str
) -> None:
    uri = str(tmp_path / "chat.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(32))
    history = LanceChatMessageHistory("trip", store=store)
    history.add_messages([HumanMessage("My sister Ingrid lives in Oslo"), AIMessage("Noted."),
                          HumanMessage("Which city should we visit first?")])  # fmt: skip
    store.add(ContextRecord.from_content("plain note", run_id="notes"))
    out = tmp_path / f"chat{suffix}"
    assert in_process("export", uri, out).code == 0
    copy = str(tmp_path / "copy.lance")
    done = in_process("import", copy, out)
    assert done.code == 0, done.err

    source, copied = _indexed(uri), _indexed(copy)
    assert copied == source
    third = next(v for v in source.values() if v[0] == "Which city should we visit first?")
    assert "Ingrid" in (third[1] or "")  # the index text quotes the earlier turns
    assert source[next(i for i, v in source.items() if v[0] == "plain note")][1] == "plain note"
    # the word only an earlier turn holds finds the later question in both stores alike
    found = [
        [h.record.text for h in ContextStore.open(u, embedder=None).search("Ingrid", k=5, mode="text")]
        for u in (uri, copy)
    ]
    assert found[0] == found[1] and "Which city should we visit first?" in found[1]
