"""LanceChatMessageHistory: a LangChain chat history on a shared context store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    BaseMessage,
    FunctionMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately

from lance_context import DEFAULT_EMBEDDER, ContextRecord, ContextStore, RecallOptions, SearchError
from lance_context.adapters import (
    LANGCHAIN_HISTORY,
    ChatIndexing,
    SearchMode,
    async_twin,
    check_arguments,
    check_unicode,
    copy_model,
    fit_window,
    keep_built,
    kept_built,
    newest_window,
    open_store,
    shared_ends,
    shared_records,
    shares_records,
)

from ._messages import (
    MESSAGE_KEY,
    attachment_ids,
    decode_message,
    decode_messages,
    encode_message,
    is_message_record,
)

__all__ = ["LanceChatMessageHistory"]

TokenCounter = Callable[[Sequence[BaseMessage]], int]
_CHAT_INDEXING = ChatIndexing()
_SYSTEM_ROLES = frozenset({SystemMessage(content="").type, SystemMessageChunk(content="").type})
_ONLY_MESSAGES = {f"metadata.{MESSAGE_KEY}": {"$exists": True}}
_SEARCH_MODES = ("recall", "vector", "text", "hybrid")
_WINDOW = "langchain.window"
_ALL = "langchain.messages"  # every message of the session, as kept_built keeps it
_RECALL = RecallOptions()


def _check_session(session_id: object) -> str:
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be a str, got {type(session_id).__name__}")
    if not session_id:
        raise ValueError("session_id must not be empty: give each conversation a non-empty id")
    return check_unicode(session_id, "session_id")  # refused now, not at every later read


def _is_tool_result(message: BaseMessage) -> bool:
    return isinstance(message, (ToolMessage, FunctionMessage))


def _is_system(message: BaseMessage) -> bool:
    return isinstance(message, SystemMessage)


def _counter(token_counter: Any) -> TokenCounter:
    """Accept a function of a message list, or a chat model (``get_num_tokens_from_messages``)."""
    method = getattr(token_counter, "get_num_tokens_from_messages", None)
    if callable(method):
        return lambda messages: int(method(list(messages)))
    if callable(token_counter):
        return lambda messages: int(token_counter(list(messages)))
    raise TypeError("token_counter must be a function of a message list or a chat model")


class LanceChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history whose messages live in a lance-context store.

    Each message is one record of the store session ``"langchain.history:" + session_id``
    (:attr:`run_id`, a namespace no other adapter's ids can reach), embedded on
    append by the store's embedder; each :meth:`add_messages` call is one commit. Many
    histories, vector stores and other adapters can share one store: every session sees
    only its own messages.

    Args:
        session_id: The conversation id (any non-empty string).
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder for a store opened at ``uri`` (``None``: no embedding).
        indexing: What is full-text indexed and embedded for each message beside the
            message itself (speaker, time, the messages before it); built once on
            append, never read back. None: the message text alone.
        recall: How :meth:`search` recalls (neighbours, fusion, an optional reranker).

    Example:
        >>> history = LanceChatMessageHistory("chat-1", uri="memory.lance")  # doctest: +SKIP
        >>> history.add_messages([HumanMessage("hi"), AIMessage("hello!")])  # doctest: +SKIP
        >>> history.get_messages(max_tokens=500)                             # doctest: +SKIP
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
        indexing: ChatIndexing | None = _CHAT_INDEXING,
        recall: RecallOptions | None = None,
    ) -> None:
        """Open the history of ``session_id`` on a shared store or a store at ``uri``."""
        check_arguments(
            "LanceChatMessageHistory", indexing=(indexing, ChatIndexing), recall=(recall, RecallOptions)
        )
        super().__init__()
        self.indexing = indexing
        self.recall_options = recall or _RECALL  # immutable: one default serves every history
        self.session_id = _check_session(session_id)
        self.run_id = LANGCHAIN_HISTORY.run_id(self.session_id)
        self.store = open_store(
            store, uri, who="LanceChatMessageHistory", storage_options=storage_options, embedder=embedder
        )

    def __repr__(self) -> str:
        return f"LanceChatMessageHistory({self.session_id!r}, store={self.store!r})"

    # ------------------------------------------------------------------ reads
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the session, oldest first."""
        records = shared_records(self.store, self.run_id)
        shares = shares_records(self.store, whole=len(records))  # else a read gives new records
        kept = kept_built(records, _ALL) if shares else None
        if kept is not None:  # the same cached records as a read before: its messages, as copies
            return [copy_model(message) for message in kept]
        messages = [message for _, message in decode_messages(records)]
        if shares:
            keep_built(records, _ALL, [copy_model(message) for message in messages])
        return messages

    def get_messages(
        self,
        last: int | None = None,
        max_tokens: int | None = None,
        token_counter: Any = count_tokens_approximately,
        *,
        include_system: bool = True,
    ) -> list[BaseMessage]:
        """The newest messages that fit, oldest first; only the messages returned are read.

        An AI message that calls tools is never separated from its tool results, and the
        window never starts on a tool result. A leading system message stays first when
        ``include_system`` is set and it fits.

        Args:
            last: At most this many messages (not counting a pinned system message).
            max_tokens: Token budget for the whole window.
            token_counter: Counts the tokens of a message list (default: LangChain's
                ``count_tokens_approximately``), or a chat model.
            include_system: Pin a leading system message.

        Returns:
            The window; every message when neither ``last`` nor ``max_tokens`` is given.
        """
        for name, value in (("last", last), ("max_tokens", max_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
        counter = _counter(token_counter)
        if last is None and max_tokens is None:
            return self.messages
        chunk = (last or 32) + 8
        # the newest records first: the read brings the session's first ones along for the
        # store's cache, so the pinned system message below costs no read of its own
        if include_system:  # both from one check of the store's version
            head, newest_read = shared_ends(self.store, self.run_id, first=1, last=chunk)
        else:
            head, newest_read = [], shared_records(self.store, self.run_id, last=chunk)
        read = {chunk: newest_read}
        # the same cached records as a window already fitted: its messages again, as copies
        sources = [*head, *read[chunk]]
        counted = None if max_tokens is None else token_counter  # a window without a budget counts nothing
        key = (_WINDOW, last, max_tokens, include_system, id(counted))
        shares = shares_records(self.store)  # else every read is new records: nothing to find or keep
        kept = kept_built(sources, key) if shares else None
        if kept is not None and kept[0] is counted:
            return [copy_model(message) for message in kept[1]]
        pinned = self._leading_system(head)
        read_more = False

        def newest(n: int) -> tuple[list[BaseMessage], bool]:
            nonlocal read_more
            # the store keeps a session's newest records in memory between commits to it
            records = read.pop(n, None)
            if records is None:
                read_more, records = True, shared_records(self.store, self.run_id, last=n)
            body = decode_messages(records)
            if pinned and body and body[0][0].id == pinned[0][0].id:
                body = body[1:]
            return [message for _, message in body], len(records) < n

        window = newest_window(
            newest,
            lambda messages: fit_window(
                messages,
                is_tool_result=_is_tool_result,
                max_tokens=max_tokens,
                token_count=counter,
                last=last,
                pin_system=_is_system if pinned else None,  # the session's own first message only
            ),
            is_tool_result=_is_tool_result,
            pinned=[message for _, message in pinned],
            chunk=chunk,
        )
        if shares and not read_more:  # built from these cached records alone
            keep_built(sources, key, (counted, [copy_model(message) for message in window]))
        return window

    def _leading_system(self, first: list[ContextRecord]) -> list[tuple[ContextRecord, BaseMessage]]:
        """The session's first message (``first``), when it is a system message, with its images.

        A ``SystemMessageChunk`` counts too (as in ``trim_messages``); any other first
        message is neither decoded nor read further.
        """
        if not first or first[0].role not in _SYSTEM_ROLES:
            return []
        needed = attachment_ids(first[0])
        attachments = {r.id: r for r in self.store.get_many(needed, with_vectors=False)} if needed else {}
        return [(first[0], decode_message(first[0], attachments))]

    def search(
        self, query: str, k: int = 4, *, mode: SearchMode | Literal["recall"] = "recall"
    ) -> list[BaseMessage]:
        """Messages of this session most relevant to ``query``.

        Args:
            query: What to look for.
            k: How many matching messages. With ``recall`` each match comes with the
                messages around it (``recall=RecallOptions(before=, after=)``, one each
                side by default), match by match, best match first, none twice.
            mode: ``recall`` (both channels fused, with neighbours: see
                :meth:`ContextStore.recall`), or ``vector``, ``text`` (BM25), ``hybrid``
                for exactly ``k`` messages best first. The history's ``recall`` options
                (a reranker included) apply to ``recall`` only.
        """
        if mode not in _SEARCH_MODES:  # the store's own message would leave out "recall"
            raise SearchError(f"mode must be 'recall', 'vector', 'text' or 'hybrid', got {mode!r}")
        if mode == "recall":
            found = self.store.recall(
                query, run_id=self.run_id, k=k, where=_ONLY_MESSAGES, options=self.recall_options
            )
            records = [turn for match in found for turn in match.turns]
        else:
            hits = self.store.search(query, k=k, mode=mode, run_id=self.run_id, where=_ONLY_MESSAGES)
            records = [hit.record for hit in hits]
        needed = [i for record in records for i in attachment_ids(record)]
        attachments = {r.id: r for r in self.store.get_many(needed, with_vectors=False)} if needed else {}
        return [decode_message(record, attachments) for record in records]

    def at_version(self, version: int | str) -> LanceChatMessageHistory:
        """A read-only view of this session as it was at a store version (or tag)."""
        return LanceChatMessageHistory(
            self.session_id,
            store=self.store.at_version(version),
            indexing=self.indexing,
            recall=self.recall_options,
        )

    # ------------------------------------------------------------------ writes
    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages in one commit (one store version).

        Raises:
            UnsupportedContentError: An item is not a LangChain message.
            InvalidRecordError: A message that cannot be stored losslessly; nothing is written.
        """
        if isinstance(messages, BaseMessage):
            messages = [messages]
        records = [
            record
            for index, message in enumerate(messages)
            for record in encode_message(message, self.run_id, index)
        ]
        if records:
            if self.indexing is not None:
                self.indexing.hint(self.store, self.run_id, records, is_turn=is_message_record)
            self.store.add(records)

    def clear(self) -> None:
        """Remove the session's messages as a new version; older versions keep them."""
        self.store.delete(run_id=self.run_id)

    # ------------------------------------------------------------------ async
    aget_messages = async_twin(get_messages)
    aadd_messages = async_twin(add_messages)
    aclear = async_twin(clear)
    asearch = async_twin(search)
