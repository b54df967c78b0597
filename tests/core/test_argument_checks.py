"""Arguments of the wrong type or range get a clear error from the store and change nothing.

Each of these used to fail with a bare Python error from deep inside (``'int' object is
not iterable``), to be taken as something else (``keep_order="no"`` as true, ``export(3)``
as a folder named ``3`` in the current directory), or to say something unrelated.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, InvalidFilterError, InvalidRecordError


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(8))
    store.add([ContextRecord.from_content(f"note {i}", run_id="r", id=f"n{i}") for i in range(3)])
    return store


CASES: list[tuple[str, Callable[[ContextStore], Any], type[Exception], str]] = [
    ("delete an int", lambda s: s.delete(3), InvalidFilterError, "ids must be an id or an iterable of ids"),
    ("delete bytes", lambda s: s.delete(b"n1"), InvalidFilterError, "ids must be an id or an iterable"),
    (
        "upsert keep_order a string",
        lambda s: s.upsert(ContextRecord.from_content("x", run_id="r", id="n1"), keep_order="no"),
        InvalidRecordError,
        "keep_order must be True or False",
    ),
    ("replace without a session", lambda s: s.replace(None, []), InvalidRecordError, "takes a session id"),
    ("export to an int", lambda s: s.export(3), InvalidFilterError, "export\\(\\) takes a path or URI"),
    ("export to nothing", lambda s: s.export("  "), InvalidFilterError, "export\\(\\) takes a path or URI"),
    ("cleanup older_than a string", lambda s: s.cleanup(older_than="x"), InvalidFilterError, "older_than"),
    (
        "cleanup older_than negative",
        lambda s: s.cleanup(older_than=timedelta(days=-1)),
        InvalidFilterError,
        "zero or more",
    ),
    ("cleanup keep_versions 0", lambda s: s.cleanup(keep_versions=0), InvalidFilterError, "keep_versions"),
    (
        "cleanup keep_tagged a string",
        lambda s: s.cleanup(keep_tagged="no"),
        InvalidFilterError,
        "keep_tagged",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_argument_is_refused_and_nothing_changes(
    store: ContextStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: Callable[[ContextStore], Any],
    error: type[Exception],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    before = [(v.version, v.operation) for v in store.versions()]
    with pytest.raises(error, match=message):
        call(store)
    assert [(v.version, v.operation) for v in store.versions()] == before
    assert [r.text for r in store.records("r")] == ["note 0", "note 1", "note 2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.lance"]  # no stray folder such as "3"


def test_a_path_object_still_exports(store: ContextStore, tmp_path: Path) -> None:
    report = store.export(tmp_path / "copy.lance")
    assert report.records == 3
    assert [r.text for r in ContextStore.open(str(tmp_path / "copy.lance"), embedder=None).records("r")] == [
        "note 0",
        "note 1",
        "note 2",
    ]
