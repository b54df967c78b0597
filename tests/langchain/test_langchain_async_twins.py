"""Every async method of the key-value stores, caches and record manager takes its sync twin's parameters."""

from __future__ import annotations

import inspect

import pytest

from lance_context.langchain import (
    LanceByteStore,
    LanceCache,
    LanceDocumentStore,
    LanceRecordManager,
    LanceSemanticCache,
)

TWINS = {
    LanceByteStore: ["mget", "mset", "mdelete", "yield_keys"],
    LanceDocumentStore: ["mget", "mset", "mdelete", "yield_keys"],
    LanceCache: ["lookup", "update", "clear"],
    LanceSemanticCache: ["lookup", "update", "clear"],
    LanceRecordManager: ["create_schema", "get_time", "update", "exists", "list_keys", "delete_keys"],
}


def _parameters(method: object) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "name"), [(cls, name) for cls, names in TWINS.items() for name in names])
def test_async_twin_takes_the_same_parameters(cls: type, name: str) -> None:
    sync, twin = getattr(cls, name), getattr(cls, "a" + name)
    assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin)
    assert _parameters(twin) == _parameters(sync)
    assert twin.__qualname__.startswith(cls.__name__) or twin.__qualname__.startswith(
        "_Lance"
    )  # overridden here
