"""LLM generations to bytes and back, for the caches: LangChain's JSON serialization, never pickle.

Each generation is written with ``langchain_core.load.dumps`` (the format LangChain's
own caches and langchain-redis use) and the list is stored as JSON. Reading it back
is safe because it is JSON and the reviver is given an explicit allow-list: ``loads``
instantiates only the generation and message classes below, never imports or calls
anything else a stored payload might name, and never reads secrets from the
environment (``secrets_from_env`` stays False). A generation that does not survive
``loads(dumps(g)) == g`` (a custom subclass, ``generation_info`` holding a datetime...)
is refused when it is cached, so a cache hit always returns exactly what was stored.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_core.load import dumps, loads
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

__all__ = ["GENERATIONS_JSON", "dump_generations", "load_generations"]

log = logging.getLogger("lance_context")

#: Content type of a cached value: a JSON list of ``dumps(generation)`` strings.
GENERATIONS_JSON = "application/vnd.langchain.generations+json"

_ALLOWED: tuple[Any, ...] = (
    Generation,
    GenerationChunk,
    ChatGeneration,
    ChatGenerationChunk,
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
)


def _revive(text: str) -> Any:
    # ``loads`` is marked beta and warns once per process when called from outside
    # LangChain; the warning says nothing to our users (we pin the allow-list).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The function `loads` is in beta", category=Warning)
        return loads(text, allowed_objects=_ALLOWED, secrets_from_env=False)


def dump_generations(generations: object) -> bytes:
    """The stored form of a cache value (a sequence of LangChain ``Generation`` objects).

    Raises:
        TypeError: The value is not a sequence of ``Generation`` objects.
        ValueError: A generation would not come back exactly from the cache.
    """
    if isinstance(generations, (str, bytes)) or not isinstance(generations, Sequence):
        raise TypeError(f"a cache value is a list of Generation objects, got {type(generations).__name__}")
    items = []
    for n, generation in enumerate(generations):
        if not isinstance(generation, Generation):
            raise TypeError(f"cache value item {n} is a {type(generation).__name__}, not a Generation")
        try:
            text = dumps(generation)
            exact = _revive(text) == generation
        except RecursionError:
            raise ValueError(
                f"generation {n} ({type(generation).__name__}) nests too deeply to be cached; "
                "nothing was written"
            ) from None
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            raise ValueError(
                f"generation {n} ({type(generation).__name__}) cannot be cached exactly: LangChain "
                f"cannot revive it from its serialized form ({exc}); nothing was written"
            ) from exc
        if not exact:
            raise ValueError(
                f"generation {n} ({type(generation).__name__}) cannot be cached exactly: it holds "
                "values LangChain's serializer does not keep (such as datetimes or objects in "
                "generation_info); nothing was written"
            )
        items.append(text)
    return json.dumps(items, ensure_ascii=False).encode("utf-8")


def load_generations(data: bytes, where: str) -> list[Generation] | None:
    """A cache value from its stored form; None (a miss, logged) when it cannot be revived.

    Only entries written by another LangChain version can fail here: :func:`dump_generations`
    refuses what it could not read back.
    """
    try:
        revived = [_revive(text) for text in json.loads(data.decode("utf-8"))]
    except (ValueError, TypeError, KeyError, NotImplementedError, RecursionError) as exc:
        log.warning("cache entry %s could not be read (%s); treating it as a miss", where, exc)
        return None
    if not all(isinstance(g, Generation) for g in revived):
        log.warning("cache entry %s does not hold generations; treating it as a miss", where)
        return None
    return revived
