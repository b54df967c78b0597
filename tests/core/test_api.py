"""The seed README's example runs verbatim, and entries survive a new process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from lance_context import HashingEmbedder
from lance_context.api import Context

ROOT = Path(__file__).resolve().parents[2]


def test_seed_example_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seed = textwrap.dedent(
        """
        import PIL.Image
        from lance_context.api import Context
        ctx = Context.create("context.lance")
        ctx.add("user", "Where should I travel in spring?")
        ctx.add("assistant", PIL.Image.new("RGB", (2, 2), color="teal"))
        first_version = ctx.version()
        ctx.add("assistant", "Let me fetch suggestions…")
        ctx.checkout(first_version)
        print(ctx.entries())
        entries = ctx.entries()
        print(len(entries), entries[0].content, entries[1].content.size, entries[1].content.getpixel((0, 0)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", seed], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.splitlines()[-1] == "2 Where should I travel in spring? (2, 2) (0, 128, 128)"
    # a new process sees the same history and can time travel
    again = textwrap.dedent(
        """
        from lance_context.api import Context
        ctx = Context.open("context.lance")
        print([e.role for e in ctx.entries()])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", again], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "['user', 'assistant', 'assistant']"


def test_context_facade(tmp_path: Path) -> None:
    ctx = Context.create(str(tmp_path / "c.lance"), run_id="trip", embedder=HashingEmbedder(16))
    other = Context(ctx.store, run_id="other")
    other.add("user", "not mine")
    v1 = ctx.add("user", "Kyoto or Lisbon?", metadata={"turn": 1})
    ctx.tag("asked")
    ctx.add("assistant", {"options": ["Kyoto", "Lisbon"]})
    assert [e.content for e in ctx.entries()] == ["Kyoto or Lisbon?", {"options": ["Kyoto", "Lisbon"]}]
    assert ctx.entries(roles="user")[0].metadata == {"turn": 1}
    assert ctx.search("Lisbon", k=5)[0].record.run_id == ctx.session == "context:trip"
    assert all(h.record.run_id == "context:trip" for h in ctx.search("mine", k=5))
    assert all(h.record.run_id == "context:trip" for h in ctx.search("mine", k=5, run_id="other"))
    fork = ctx.branch("alt", from_version="asked")
    fork.add("assistant", "Lisbon!")
    assert [e.content for e in fork.entries()] == ["Kyoto or Lisbon?", "Lisbon!"]
    ctx.checkout(v1)
    assert len(ctx.entries()) == 1
    ctx.checkout_latest()
    restored = ctx.restore("asked")
    assert ctx.version() == restored and len(ctx.entries()) == 1
    assert len(ctx.diff(v1, restored).added) == 0
    assert ctx.versions()[-1].operation == "restore"
    assert [e.content for e in other.entries()] == ["not mine"]  # another run on the store keeps its own
    other.add("user", "mine again")
    assert [r.content for r in ctx.diff(restored).added] == [] and len(other.diff(restored).added) == 1
    ctx.add("assistant", Image.new("L", (1, 1)), text="a tiny picture")
    assert ctx.entries()[-1].text == "a tiny picture"


def test_quickstart_example_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(tmp_path / "demo.lance")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert "search: Kyoto for the cherry blossoms" in out.stdout
    assert "main is unchanged:" in out.stdout
    assert "(1 record in all)" in out.stdout and "(3 records in all, tagged before-answer)" in out.stdout
