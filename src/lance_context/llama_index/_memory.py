"""LanceMemory: a LlamaIndex ``BaseMemory`` persisted in a context store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ToolCallBlock,
    VideoBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.llm import LLM
from llama_index.core.memory.types import BaseMemory
from llama_index.core.utils import get_tokenizer

from lance_context import DEFAULT_EMBEDDER, ContextStore, RecallOptions
from lance_context.adapters import (
    LLAMA_INDEX_MEMORY,
    ChatIndexing,
    check_arguments,
    copy_model,
    fit_window,
    group_exchanges,
    newest_window,
    shared_records,
)

from ._bound import StoreBound
from ._common import check_key, resolve_store
from ._memory_entries import Entry, conversational, query_text, turns
from ._messages import is_system, is_tool_result, message_list, read_message, records_for, shared_message

__all__ = ["DEFAULT_TOKEN_LIMIT", "LanceMemory"]

DEFAULT_TOKEN_LIMIT = 3000
_LLM_TOKEN_RATIO = 0.75  # the share of an LLM's context window a memory uses, as in LlamaIndex
_CHAT_INDEXING = ChatIndexing()
_MAX_COUNTED = 4096  # token counts a memory remembers (the messages of its recent reads)


class LanceMemory(StoreBound, BaseMemory):
    """A LlamaIndex chat memory that lives in a lance-context store.

    Every message is one record of the session; ``get`` returns the newest messages
    that fit ``token_limit`` without breaking a tool exchange, and with
    ``semantic_top_k > 0`` also brings back the older messages most relevant to the
    input. Writes are versioned: :meth:`at_version` reads the memory as it was.

    Example:
        >>> from lance_context import HashingEmbedder
        >>> memory = LanceMemory.from_defaults(                     # doctest: +SKIP
        ...     session_id="user-42", uri="memory.lance", embedder=HashingEmbedder(),
        ...     token_limit=2000, semantic_top_k=2)
        >>> engine = SimpleChatEngine.from_defaults(memory=memory, llm=llm)  # doctest: +SKIP
    """

    session_id: str = Field(description="The session (conversation) this memory reads and writes.")
    token_limit: int = Field(default=DEFAULT_TOKEN_LIMIT, gt=0, description="Token budget of get().")
    semantic_top_k: int = Field(
        default=0, ge=0, description="How many relevant older messages get(input) brings back."
    )
    semantic_token_ratio: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Largest share of the budget recalled messages may use."
    )
    media_token_estimate: int = Field(
        default=256, ge=0, description="Tokens counted for an image, audio, video or document block."
    )
    namespace: str = Field(
        default="", description="Scope of the session inside the LlamaIndex memory namespace."
    )
    tokenizer_fn: Callable[[str], list[Any]] = Field(default_factory=get_tokenizer, exclude=True)
    _store: ContextStore = PrivateAttr()
    _indexing: ChatIndexing | None = PrivateAttr()
    _recall_options: RecallOptions = PrivateAttr()
    _token_counts: dict[int, tuple[ChatMessage, Any, int, int]] = PrivateAttr(default_factory=dict)

    def __init__(
        self,
        *,
        store: ContextStore,
        indexing: ChatIndexing | None = _CHAT_INDEXING,
        recall_options: RecallOptions | None = None,
        **data: Any,
    ) -> None:
        """Use :meth:`from_defaults`; this wires an open store."""
        super().__init__(**data)
        check_key(self.session_id, "session_id")
        if not isinstance(store, ContextStore):
            raise TypeError(f"store must be a lance_context.ContextStore, got {type(store).__name__}")
        check_arguments(
            "LanceMemory", indexing=(indexing, ChatIndexing), recall_options=(recall_options, RecallOptions)
        )
        self._store = store
        self._indexing = indexing
        self._recall_options = recall_options or RecallOptions()

    @classmethod
    def class_name(cls) -> str:
        """The LlamaIndex class name."""
        return "LanceMemory"

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        session_id: str,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        token_limit: int | None = None,
        tokenizer_fn: Callable[[str], list[Any]] | None = None,
        semantic_top_k: int = 0,
        semantic_token_ratio: float = 0.5,
        chat_history: Sequence[ChatMessage] | None = None,
        llm: LLM | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
        storage_options: Mapping[str, str] | None = None,
        namespace: str = "",
        indexing: ChatIndexing | None = _CHAT_INDEXING,
        recall_options: RecallOptions | None = None,
        **store_options: Any,
    ) -> LanceMemory:
        """Create a memory for ``session_id`` on a store.

        Args:
            session_id: The conversation to read and write.
            store: An open ContextStore (or give ``uri``).
            uri: Where to open (or create) the store.
            token_limit: Token budget of :meth:`get`; default: 75% of the LLM's context
                window when ``llm`` is given, else 3000.
            tokenizer_fn: Splits text into tokens (default: LlamaIndex's tokenizer).
            semantic_top_k: Relevant older messages :meth:`get` brings back (0: none),
                ranked by :meth:`ContextStore.recall` (by text alone on a store that
                does not embed).
            semantic_token_ratio: Largest share of the budget recalled messages may use.
            chat_history: Messages that replace the session's history, as in LlamaIndex.
            llm: Used only to size the default token limit.
            embedder: The store's embedder when opening ``uri`` (see ``ContextStore.open``).
            storage_options: Object-store settings when opening ``uri``.
            namespace: Scope of the session inside the LlamaIndex memory namespace.
            indexing: What is full-text indexed and embedded beside each message (the
                speaker, time and messages before it), built once on append and never
                read back; None: the message text alone.
            recall_options: How older messages are ranked for recall (fusion, an
                optional reranker); whole exchanges come back, not ``before``/``after``.
            **store_options: Other ``ContextStore.open`` options.
        """
        if token_limit is None:
            window = llm.metadata.context_window if llm is not None else None
            token_limit = int(window * _LLM_TOKEN_RATIO) if window else DEFAULT_TOKEN_LIMIT
        fields = {
            "session_id": session_id, "token_limit": token_limit, "namespace": namespace,
            "tokenizer_fn": tokenizer_fn or get_tokenizer(), "semantic_top_k": semantic_top_k,
            "semantic_token_ratio": semantic_token_ratio,
        }  # fmt: skip
        # Bad options and messages are refused before a store is opened (or created) at uri.
        cls.__pydantic_validator__.validate_python(fields, self_instance=cls.__new__(cls))
        check_key(session_id, "session_id")
        check_arguments(
            "LanceMemory", indexing=(indexing, ChatIndexing), recall_options=(recall_options, RecallOptions)
        )
        history = None if chat_history is None else message_list(chat_history)
        if history:
            records_for(history, LLAMA_INDEX_MEMORY.run_id(session_id, scope=namespace))
        opened = resolve_store(
            store, uri, who="LanceMemory", embedder=embedder, storage_options=storage_options,
            open_options=store_options,
        )  # fmt: skip
        memory = cls(store=opened, indexing=indexing, recall_options=recall_options, **fields)
        if history is not None:
            memory.set(history)
        return memory

    # ------------------------------------------------------------------ identity
    @property
    def store(self) -> ContextStore:
        """The store underneath."""
        return self._store

    @property
    def run_id(self) -> str:
        """The session's run id in the store: ``"llama_index.memory:<namespace>:<session_id>"``.

        The adapter's own namespace, so no other adapter's id reaches it.
        """
        return LLAMA_INDEX_MEMORY.run_id(self.session_id, scope=self.namespace)

    def _copy_on(self, store: ContextStore) -> LanceMemory:
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(store=store, indexing=self._indexing, recall_options=self._recall_options, **fields)

    def at_version(self, version: int | str) -> LanceMemory:
        """A read-only memory of this session as it was at a store version or tag."""
        return self._copy_on(self._store.at_version(version))

    def branch(self, name: str, from_version: int | str | None = None) -> LanceMemory:
        """Fork the conversation: a memory on a new store branch (from a version).

        Messages added on the branch never show here, and the other way round.
        """
        return self._copy_on(self._store.branch(name, from_version=from_version))

    # ------------------------------------------------------------------ reads
    def _entries(
        self, *, last: int | None = None, limit: int | None = None, shared: bool = False
    ) -> list[Entry]:
        """The session's messages (of its newest ``last`` or first ``limit`` records), oldest first.

        ``shared``: the messages kept with the cached records themselves, for a read that
        copies only the messages it returns (see :meth:`_as_buffer`); else copies.
        """
        read = shared_message if shared else read_message
        entries = []
        for record in shared_records(self._store, self.run_id, last=last, limit=limit):
            message = read(record)
            if message is not None:
                entries.append((record.id, message))
        return entries

    def _window_entries(self, budget: int, *, pin: bool = True) -> list[Entry]:
        """Enough of the newest messages for a window of ``budget`` tokens (a leading system one pinned).

        Only the records the window may need are read; the store keeps a session's newest
        records in memory between commits to it.
        """
        first = self._entries(limit=1, shared=True) if pin else []
        pinned = first if first and is_system(first[0][1]) else []

        def newest(n: int) -> tuple[list[Entry], bool]:
            records = shared_records(self._store, self.run_id, last=n)
            body = [(r.id, m) for r in records if (m := shared_message(r)) is not None]
            if pinned and body and body[0][0] == pinned[0][0]:
                body = body[1:]
            return body, len(records) < n

        return newest_window(
            newest,
            lambda entries: self._window(entries, budget, pin=bool(pinned)),  # the session's first only
            is_tool_result=lambda e: is_tool_result(e[1]),
            pinned=pinned,
        )

    def get_all(self) -> list[ChatMessage]:
        """Every message of the session, oldest first."""
        return [message for _, message in self._entries()]

    def get(self, input: str | ChatMessage | None = None, **kwargs: Any) -> list[ChatMessage]:
        """The newest messages that fit the token limit, plus recalled older ones.

        Never returns a tool result without the call it answers, never starts inside a
        tool exchange, and keeps a leading system message first (unless it leaves no room
        for a turn: then the window is ``ChatMemoryBuffer``'s). With ``semantic_top_k > 0``
        the older messages (outside the window) most relevant to ``input`` (or, without
        input, to the latest user message) come back too, in their original order right
        after the system message, within the limit.

        Args:
            input: The text the answer will respond to.
            **kwargs: ``initial_token_count`` (tokens already spent by the caller's
                prefix messages); other keyword arguments are accepted and ignored.
        """
        initial = int(kwargs.get("initial_token_count", 0) or 0)
        budget = self.token_limit - initial
        if budget < 0:
            raise ValueError("Initial token count exceeds token limit")
        if not self.semantic_top_k:  # a plain window reads only what it may return
            first = self._entries(limit=2, shared=True)
            window = conversational(self._window_entries(budget), first)
            if not turns(window):
                window = conversational(self._window_entries(budget, pin=False), first)
            return self._as_buffer(window)
        entries = self._entries(shared=True)  # recall looks at every older message
        window = conversational(self._window(entries, budget), entries[:2])
        if not turns(window):
            window = conversational(self._window(entries, budget, pin=False), entries[:2])
        if entries:
            query = query_text(input, entries)
            if query:
                recalled = self._recall(entries, window, query, budget)
                if recalled:
                    window = conversational(
                        self._window(entries, budget - self._count(recalled)), entries[:2]
                    )
                    pinned = 1 if window and is_system(window[0][1]) and window[0] is entries[0] else 0
                    window = window[:pinned] + recalled + window[pinned:]
        return self._as_buffer(window)

    def _as_buffer(self, window: list[Entry]) -> list[ChatMessage]:
        """Copies of the window's messages, or of the newest alone when not even it fits.

        As LlamaIndex's ``ChatMemoryBuffer`` does, so the model can say the message is too long.
        The window holds the messages kept with the cached records: only what is returned is
        copied, so a caller changing a message changes no later read.
        """
        if turns(window):
            return [copy_model(message) for _, message in window]
        newest = self._entries(last=1)
        if newest and (not window or not is_system(newest[-1][1])):  # a system one too, if nothing fits
            return [newest[-1][1]]
        return [copy_model(m) for _, m in window]

    def _window(self, entries: list[Entry], budget: int, *, pin: bool = True) -> list[Entry]:
        return fit_window(
            entries,
            is_tool_result=lambda e: is_tool_result(e[1]),
            max_tokens=budget,
            token_count=self._count,
            pin_system=(lambda e: is_system(e[1])) if pin else None,
        )

    def _recall(self, entries: list[Entry], window: list[Entry], query: str, budget: int) -> list[Entry]:
        """Whole exchanges from outside the window that best match the query, oldest first."""
        pinned = entries[:1] if window and window[0] is entries[0] and is_system(entries[0][1]) else []
        in_window = {record_id for record_id, _ in window}
        units = group_exchanges(entries[len(pinned) :], lambda e: is_tool_result(e[1]))
        unit_of = {e[0]: i for i, unit in enumerate(units) for e in unit if e[0] not in in_window}
        if not unit_of:
            return []
        newest = next((unit for unit in reversed(units) if unit[0][0] in in_window), [])
        room = min(int(budget * self.semantic_token_ratio), budget - self._count(pinned + newest))
        found = self._store.recall(
            query,
            run_id=self.run_id,
            k=3 * self.semantic_top_k,  # some matches may fall in one exchange or not fit
            before=0,
            after=0,  # the exchange a match belongs to is what comes back
            where={"id": {"$nin": sorted(in_window)}} if in_window else None,
            options=self._recall_options,
        )
        chosen: set[int] = set()
        for hit in found:
            index = unit_of.get(hit.match.id)
            if len(chosen) == self.semantic_top_k:
                break
            if index is None or index in chosen:
                continue
            cost = self._count(units[index])
            if cost <= room:
                chosen.add(index)
                room -= cost
        return [entry for i in sorted(chosen) for entry in units[i]]

    def _count(self, entries: Sequence[Entry]) -> int:
        """The entries' tokens, each kept message (never changed) counted once per settings."""
        known, tokenizer, media = self._token_counts, self.tokenizer_fn, self.media_token_estimate
        total = 0
        for _, message in entries:
            found = known.get(id(message))
            if found is None or found[0] is not message or found[1] is not tokenizer or found[2] != media:
                if len(known) >= _MAX_COUNTED:
                    known.clear()
                found = known[id(message)] = (message, tokenizer, media, self._message_tokens(message))
            total += found[3]
        return total

    def _message_tokens(self, message: ChatMessage) -> int:
        parts: list[str] = []
        media = 0
        for block in message.blocks:
            if isinstance(block, TextBlock):
                parts.append(block.text)
            elif isinstance(block, ToolCallBlock):
                parts.append(f"{block.tool_name} {block.tool_kwargs}")
            elif isinstance(block, (ImageBlock, AudioBlock, VideoBlock, DocumentBlock)):
                media += self.media_token_estimate
        if message.additional_kwargs:
            parts.append(str(message.additional_kwargs))
        text = " ".join(parts)
        return (len(self.tokenizer_fn(text)) if text else 0) + media

    # ------------------------------------------------------------------ writes
    def put(self, message: ChatMessage) -> None:
        """Append one message (one commit)."""
        self.put_messages([message])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Append messages in one atomic commit (nothing is written if one is invalid)."""
        records = records_for(messages, self.run_id)
        if records:
            if self._indexing is not None:
                self._indexing.hint(self._store, self.run_id, records)
            self._store.add(records)

    def set(self, messages: list[ChatMessage]) -> None:
        """Replace the session's history with ``messages`` in one commit (one new version)."""
        records = records_for(messages, self.run_id)
        if self._indexing is not None:
            self._indexing.hint(self._store, self.run_id, records, after_stored=False)
        self._store.replace(self.run_id, records)

    def reset(self) -> None:
        """Forget the session (a new version; older versions still show it)."""
        self._store.delete(run_id=self.run_id)
