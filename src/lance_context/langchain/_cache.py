"""LangChain LLM caches on a shared context store: exact and semantic.

Layout: the cache named ``n`` keeps the entries of one LLM configuration (LangChain's
``llm_string``) in the session ``langchain.cache:<kind>/n/<sha256(llm_string)>``,
``kind`` being ``exact`` or ``semantic``; an entry is one record whose id is the
session's id prefix plus ``sha256(prompt)`` (the same prompt is replaced, never
duplicated), whose binary payload holds the generations (see ``_generations``) and
whose metadata records the ``llm_string``. A semantic entry also keeps the prompt as
its text and the prompt's vector as its embedding; an exact entry keeps neither, so
the exact cache never embeds anything.

Scoping by session means a semantic lookup is filtered to one LLM configuration
*before* the nearest prompt is chosen: another model's closer prompt can neither be
returned nor hide this model's match.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.embeddings import Embeddings

from lance_context import (
    DEFAULT_EMBEDDER,
    ContextRecord,
    ContextStore,
    Embedder,
    EmbedderMismatchError,
    as_embedder,
)
from lance_context.adapters import LANGCHAIN_CACHE, async_twin, check_unicode, open_store

from ._generations import GENERATIONS_JSON, dump_generations, load_generations
from ._keyspace import KeySpace, check_name

__all__ = ["LanceCache", "LanceSemanticCache"]

_ROLE = "generations"


def _cacheable(build: Callable[[], ContextRecord]) -> ContextRecord | None:
    """The record of a cache value, or None (with a warning) when it would not come back exactly."""
    try:
        return build()
    except ValueError as exc:
        warnings.warn(f"not cached: {exc}", UserWarning, stacklevel=4)
        return None


def _checked(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    return text


def _sha256(text: object, what: str) -> str:
    return hashlib.sha256(_checked(text, what).encode("utf-8", "surrogatepass")).hexdigest()


class _LanceCacheBase(BaseCache):
    """What both caches share: naming, scoping by LLM string, clearing, async twins."""

    _kind: ClassVar[str]

    def __init__(
        self,
        name: str,
        store: ContextStore | None,
        uri: str | None,
        storage_options: Mapping[str, str] | None,
        embedder: Any,
    ) -> None:
        self.name = check_name(name, "cache")
        self.store = open_store(
            store, uri, who=type(self).__name__, storage_options=storage_options, embedder=embedder
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, store={self.store!r})"

    @property
    def _scope(self) -> str:
        return f"{self._kind}/{self.name}/"

    def _space(self, llm_string: str) -> KeySpace:
        """The session of one LLM configuration's entries."""
        return KeySpace(LANGCHAIN_CACHE, self._scope + _sha256(llm_string, "llm_string"))

    def _record(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE, **fields: Any
    ) -> ContextRecord:
        space = self._space(llm_string)
        return ContextRecord(
            id=space.record_id(_sha256(prompt, "prompt")),
            run_id=space.run_id,
            role=_ROLE,
            content_type=GENERATIONS_JSON,
            binary_payload=dump_generations(return_val),
            metadata={"llm_string": check_unicode(llm_string, "llm_string")},
            **fields,
        )

    def _value(self, record: ContextRecord, space: KeySpace, llm_string: str) -> RETURN_VAL_TYPE | None:
        if not space.owns(record) or record.metadata.get("llm_string") != llm_string:
            return None
        return load_generations(record.binary_payload or b"", record.id)

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry of this cache, or with ``llm_string=`` only that LLM's.

        The removal is one new store version; older versions still hold the entries.
        """
        llm_string = kwargs.pop("llm_string", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}.clear() got unexpected arguments: {sorted(kwargs)}")
        if llm_string is not None:
            self.store.delete(run_id=self._space(llm_string).run_id)
        else:
            self.store.delete(where={"run_id": {"$prefix": LANGCHAIN_CACHE.run_id(self._scope)}})

    aclear = async_twin(clear)


class LanceCache(_LanceCacheBase):
    """An exact LLM cache (LangChain ``BaseCache``) on a lance-context store.

    A hit needs the same prompt and the same LLM configuration. Generations come back
    exactly as cached (chat messages with tool calls, usage and response metadata
    included); each update is one store version, and nothing is embedded.

    Args:
        name: The cache (letters, digits, ``.``, ``_``, ``-``); caches of different
            names share nothing.
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder of a store opened at ``uri`` (the exact cache embeds nothing).

    Example:
        >>> from langchain_core.globals import set_llm_cache
        >>> set_llm_cache(LanceCache(store=store))      # doctest: +SKIP
        >>> model.invoke("Tell me a joke")              # doctest: +SKIP  (the second call is free)
    """

    _kind = "exact"

    def __init__(
        self,
        name: str = "default",
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
    ) -> None:
        """Open (or share) a store and bind the cache ``name`` of it."""
        super().__init__(name, store, uri, storage_options, embedder)

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The generations cached for this prompt and LLM configuration, or None."""
        space = self._space(llm_string)
        record = self.store.get(space.record_id(_sha256(prompt, "prompt")))
        return None if record is None else self._value(record, space, llm_string)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Cache ``return_val`` for this prompt and LLM configuration (one commit).

        A value that would not come back exactly (a datetime in its metadata, say) is not
        cached: a warning says why, and the model's answer reaches its caller as usual.

        Raises:
            TypeError: ``return_val`` is not a list of ``Generation`` objects.
        """
        record = _cacheable(lambda: self._record(prompt, llm_string, return_val))
        if record is not None:
            self.store.upsert(record)

    alookup = async_twin(lookup)
    aupdate = async_twin(update)


class LanceSemanticCache(_LanceCacheBase):
    """A semantic LLM cache on a lance-context store: similar prompts share answers.

    A lookup embeds the prompt and returns the entry of the most similar cached prompt
    *of the same LLM configuration*, if its cosine similarity is at least
    ``score_threshold``. Prompts are embedded with one method on both sides (the
    embedder's query method), and the vector of the last prompts looked up is reused
    when the same prompt is then cached.

    Args:
        embedding: LangChain embeddings for prompts. ``None``: the store's embedder.
            When the store has an embedder, ``embedding`` must be the same model; one
            store holds one embedding space.
        name: The cache (letters, digits, ``.``, ``_``, ``-``).
        score_threshold: The least cosine similarity (-1 to 1) of a hit; 1.0 admits only
            prompts the embedder cannot tell apart. Tune it for your embedder.
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder of a store opened at ``uri``.

    Example:
        >>> cache = LanceSemanticCache(store=store, score_threshold=0.9)  # doctest: +SKIP
        >>> set_llm_cache(cache)                                          # doctest: +SKIP
    """

    _kind = "semantic"

    def __init__(
        self,
        embedding: Embeddings | None = None,
        *,
        name: str = "default",
        score_threshold: float = 0.9,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
    ) -> None:
        """Open (or share) a store and bind the semantic cache ``name`` of it."""
        if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
            raise TypeError(f"score_threshold must be a number, got {score_threshold!r}")
        if not (math.isfinite(score_threshold) and -1.0 <= score_threshold <= 1.0):
            raise ValueError(f"score_threshold is a cosine similarity in [-1, 1], got {score_threshold!r}")
        super().__init__(name, store, uri, storage_options, embedder)
        self.score_threshold = float(score_threshold)
        self.embedder = self._bind(embedding)
        self._embed = functools.lru_cache(maxsize=256)(self._embed_prompt)

    def _bind(self, embedding: Embeddings | None) -> Embedder:
        """The embedder for prompts: the store's, or ``embedding`` when it fits the store."""
        store_embedder = self.store.embedder
        if embedding is None:
            if store_embedder is None:
                raise ValueError(
                    f"the store at {self.store.uri} has no embedder: pass embedding= "
                    "(LangChain embeddings for the prompts)"
                )
            return store_embedder
        wrapped = as_embedder(embedding)
        if store_embedder is not None and store_embedder.name != wrapped.name:
            raise EmbedderMismatchError(
                f"the store embeds with {store_embedder.name!r} but embedding= is {wrapped.name!r}; "
                "one store holds one embedding space: pass the same embeddings, none, or use another store"
            )
        if self.store.dimension is not None and self.store.dimension != wrapped.dimension:
            raise EmbedderMismatchError(
                f"embedding= makes {wrapped.dimension}-dimensional vectors but the store at "
                f"{self.store.uri} holds {self.store.dimension}-dimensional ones"
            )
        return wrapped

    def _embed_prompt(self, prompt: str) -> npt.NDArray[np.float32]:
        method = getattr(self.embedder, "embed_query", None)
        raw = method(prompt) if callable(method) else self.embedder.embed_texts([prompt])[0]
        return np.asarray(raw, dtype=np.float32)

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """The generations of the most similar cached prompt of this LLM configuration, or None.

        The prompt's own entry, when cached, is the answer: it wins over another prompt
        the embedder cannot tell apart from it (as an exact cache would answer).
        """
        space = self._space(llm_string)
        prompt = _checked(prompt, "prompt")
        own = self.store.get_many([space.record_id(_sha256(prompt, "prompt"))], with_vectors=False)
        if own and (value := self._value(own[0], space, llm_string)) is not None:
            return value
        if self.store.dimension is None:
            return None  # nothing was ever embedded here, so nothing can match
        hits = self.store.search(self._embed(prompt), k=1, run_id=space.run_id)
        if not hits or hits[0].score < self.score_threshold:
            return None
        return self._value(hits[0].record, space, llm_string)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Cache ``return_val`` under this prompt's vector, for this LLM configuration (one commit).

        A value that would not come back exactly is not cached, with a warning (see
        :meth:`LanceCache.update`).

        Raises:
            TypeError: ``return_val`` is not a list of ``Generation`` objects.
        """
        prompt = _checked(prompt, "prompt")
        record = _cacheable(
            lambda: self._record(prompt, llm_string, return_val, text_payload=check_unicode(prompt, "prompt"))
        )
        if record is not None:
            self.store.upsert(dataclasses.replace(record, embedding=self._embed(prompt)))

    alookup = async_twin(lookup)
    aupdate = async_twin(update)
