"""What the README and docs/ name exists, with the defaults and output they state.

``test_readme.py`` runs every ```python block; this file checks the prose and the other
blocks: error classes, command-line commands and flags, files, store methods, the policy
defaults the README quotes, and the ``lance-context diff`` output it prints. It also keeps
the seed API's promise that bad input writes nothing.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import click
import PIL.Image
import pytest

import lance_context
from lance_context import (
    CompactionPolicy,
    ContextStore,
    HashingEmbedder,
    IndexPolicy,
    InvalidFilterError,
    LanceContextError,
    RetentionPolicy,
    StoreLimits,
)
from lance_context._cli._app import cli
from lance_context.api import Context
from lance_context.langgraph import LanceCheckpointSaver

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))}
ALL_DOCS = {"README.md": README, **DOCS}


#: Errors of other packages the docs name, each where it comes from.
THIRD_PARTY_ERRORS = {"PydanticSerializationError": "pydantic_core"}


def _commands() -> dict[str, click.Command]:
    return dict(cli.commands)


def _flags(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_error_classes_named_in_the_docs_are_exported() -> None:
    for name, text in ALL_DOCS.items():
        for error in sorted(set(re.findall(r"\b([A-Z][A-Za-z]*Error)\b", text))):
            if error in THIRD_PARTY_ERRORS:
                assert hasattr(importlib.import_module(THIRD_PARTY_ERRORS[error]), error)
                continue
            if hasattr(builtins, error):
                continue
            assert error in lance_context.__all__, (
                f"{name} names {error}, which lance_context does not export"
            )
            cls = getattr(lance_context, error)
            assert issubclass(cls, LanceContextError), f"{error} is not a LanceContextError"


def test_every_command_and_flag_in_the_readme_table_exists() -> None:
    commands = _commands()
    rows = re.findall(r"^\| `([a-z][a-z-]*)(?: ([^`]*))?` \|", README, flags=re.M)
    assert len(rows) >= 20
    named = set()
    for command, usage in rows:
        assert command in commands, (
            f"the README's table names `lance-context {command}`, which does not exist"
        )
        named.add(command)
        for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", usage or ""):
            assert flag in _flags(commands[command]), f"`lance-context {command}` has no {flag}"
    assert named == set(commands), f"commands missing from the README's table: {set(commands) - named}"


def test_every_long_flag_in_the_readme_prose_exists() -> None:
    known = {flag for command in _commands().values() for flag in _flags(command)} | _flags(cli)
    for flag in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", README))):
        assert flag in known, f"the README names {flag}, which no lance-context command takes"
    for short, long in (("-o", "--storage-option"), ("-b", "--branch"), ("-V", "--version"), ("-t", "--tag")):
        assert f"`{short}/{long}" in README
        assert any({short, long} <= _flags(c) for c in _commands().values()), f"{short}/{long}"
    package_source = "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "src/lance_context").rglob("*.py")
    )
    for variable in re.findall(r"`(LANCE_CONTEXT_[A-Z_]+)", README):
        assert f'"{variable}"' in package_source, (
            f"the README names {variable}, which the package never reads"
        )


def test_make_targets_in_the_readme_exist() -> None:
    targets = set(
        re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.M)
    )
    for target in sorted(set(re.findall(r"`make ([a-z-]+)`", README)) | {"demo", "test"}):
        assert target in targets, f"the README names `make {target}`, which the Makefile lacks"


def test_files_named_in_the_docs_exist() -> None:
    found = {
        p.name for top in ("src", "tests", "integrations", "examples") for p in (ROOT / top).rglob("*.py")
    }
    for name, text in ALL_DOCS.items():
        for path in sorted(set(re.findall(r"`((?:[\w./-]+/)?[\w-]+\.(?:py|md|png))`", text))):
            if path == "_name.py":  # the generic name of a private module
                continue
            exists = (ROOT / path).exists() or (ROOT / "docs" / path).exists() or Path(path).name in found
            assert exists, f"{name} names {path}, which does not exist"
        for link in re.findall(r"\]\(((?:docs/)?[\w-]+\.(?:md|png))\)", text):
            base = ROOT if name == "README.md" else ROOT / "docs"
            assert (base / link).exists(), f"{name} links to {link}, which does not exist"


def test_store_methods_named_in_the_docs_exist() -> None:
    for name, text in ALL_DOCS.items():
        for method in sorted(set(re.findall(r"\bstore\.(\w+)\(", text))):
            assert hasattr(ContextStore, method), f"{name} calls store.{method}(), which ContextStore lacks"
    for method in ("create", "open", "add", "version", "checkout", "entries"):  # the seed's surface
        assert callable(getattr(Context, method))


def test_the_defaults_the_readme_quotes() -> None:
    assert "`StoreLimits.max_json_depth` (200)" in README and StoreLimits().max_json_depth == 200
    assert "`StoreLimits.max_record_bytes` (64 MiB)" in README and StoreLimits().max_record_bytes == 64 << 20
    assert "`fanout` (8)" in README and CompactionPolicy().fanout == 8
    index = IndexPolicy()
    assert "once the store holds 256 rows" in README and index.scalar_refresh_rows == 256
    assert "once 10 % of the rows (at least 256) or 4,096 rows" in README
    assert (index.refresh_unindexed_share, index.refresh_unindexed_rows) == (0.1, 4096)
    assert "(IVF_SQ" in README and index.vector_index_type == "IVF_SQ"
    assert "once a store holds 20,000 vectors" in README and index.vector_index_min_rows == 20_000
    stated = (
        "RetentionPolicy(keep_all=timedelta(days=7), hourly=timedelta(days=30), daily=None)  # the defaults"
    )
    assert stated in README
    assert RetentionPolicy() == RetentionPolicy(
        keep_all=timedelta(days=7), hourly=timedelta(days=30), daily=None
    )
    assert "`policy.every` (an hour)" in README and RetentionPolicy().every == timedelta(hours=1)
    assert "`cached_threads=1024`" in README
    assert inspect.signature(LanceCheckpointSaver).parameters["cached_threads"].default == 1024


def _quickstart_store(path: Path) -> None:
    """The quickstart's store, written with the hashing embedder (the versions are the same)."""
    ctx = Context.create(str(path), embedder=HashingEmbedder(16))
    ctx.add("user", "Where should I travel in spring?")
    ctx.add("assistant", PIL.Image.new("RGB", (2, 2), color="teal"))
    first = ctx.version()
    ctx.add("assistant", "Let me fetch suggestions…")
    ctx.checkout(first)
    ctx.checkout_latest()
    ctx.tag("before-answer")
    ctx.add("assistant", "Kyoto for the cherry blossoms, or Lisbon for mild weather.")
    alt = ctx.branch("alternative", from_version="before-answer")
    alt.add("assistant", "Try Patagonia: spring there is in October.")


def _lance_context(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "lance_context._cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_the_readme_command_line_examples_print_what_it_shows(tmp_path: Path) -> None:
    _quickstart_store(tmp_path / "context.lance")
    console = re.search(r"```console\n\$ (lance-context [^\n]*)\n(.*?)```", README, flags=re.S)
    assert console is not None
    args = console.group(1).split()[1:]
    done = _lance_context(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = [line.rstrip() for line in console.group(2).splitlines() if line.strip()]
    printed = [line.rstrip() for line in done.stdout.splitlines() if line.strip()]
    assert printed == shown
    block = re.search(r"```bash\nmake demo[^\n]*\n(.*?)```", README, flags=re.S)
    assert block is not None
    for line in block.group(1).splitlines():
        if line.startswith("lance-context "):
            command = line.split("#")[0].split()[1:]
            done = _lance_context(*command, cwd=tmp_path)
            assert done.returncode == 0, f"{line}: {done.stderr}"
            assert "Context session" in done.stdout or command[0] != "show"


@pytest.mark.parametrize("bad", ["", None, 5])
def test_context_create_refuses_a_bad_run_id_before_creating_anything(tmp_path: Path, bad: object) -> None:
    uri = tmp_path / "never.lance"
    with pytest.raises(InvalidFilterError, match="non-empty string"):
        Context.create(str(uri), run_id=bad, embedder=HashingEmbedder(8))  # type: ignore[arg-type]
    assert not uri.exists()


def test_the_methods_the_readme_says_have_no_async_twin() -> None:
    from lance_context import AsyncContextStore

    assert "(all but `bulk`, which does no I/O; the static\n`ContextStore.import_` has none" in README
    public = {
        name
        for name in dir(ContextStore)
        if not name.startswith("_") and callable(getattr(ContextStore, name))
    }
    assert {name for name in public if not hasattr(AsyncContextStore, name)} == {"bulk", "import_"}


def test_the_python_blocks_of_docs_parse_and_import_what_exists() -> None:
    """docs/ blocks need object storage or Ray to run: check they parse and their imports resolve."""
    import ast

    blocks = [
        (name, b)
        for name, text in DOCS.items()
        for b in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    ]
    assert blocks
    for name, block in blocks:
        tree = ast.parse(block, filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{name}: {node.module} has no {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)
