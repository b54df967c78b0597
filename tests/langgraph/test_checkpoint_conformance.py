"""The langgraph-checkpoint-conformance suite, every capability, on a real Lance store."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from pathlib import Path

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer

from lance_context.langgraph import LanceCheckpointSaver


def _registered(tmp_path: Path) -> RegisteredCheckpointer:
    counter = itertools.count()

    @checkpointer_test(name="LanceCheckpointSaver")
    async def lance_saver() -> AsyncGenerator[LanceCheckpointSaver, None]:
        # a fresh store per capability suite, as the suite asks
        yield LanceCheckpointSaver(uri=str(tmp_path / f"suite-{next(counter)}.lance"))

    return lance_saver


async def test_every_conformance_capability_passes(tmp_path: Path) -> None:
    report = await validate(_registered(tmp_path))
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert failures == {}
    assert {name for name, r in report.results.items() if r.detected} == {c.value for c in ALL_CAPABILITIES}
    assert all(r.passed is True and r.tests_passed > 0 for r in report.results.values())
    assert report.conformance_level() == "FULL"
