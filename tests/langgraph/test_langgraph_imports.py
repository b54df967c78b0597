"""The public door of the LangGraph adapters, and what happens without LangGraph."""

from __future__ import annotations

import subprocess
import sys

import lance_context.langgraph as adapters


def test_public_names_are_pinned() -> None:
    assert sorted(adapters.__all__) == ["LanceCheckpointSaver", "LanceStore"]
    for name in adapters.__all__:
        assert getattr(adapters, name).__doc__


def test_missing_langgraph_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "import lance_context\n"
        "try:\n"
        "    import lance_context.langgraph\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lance-context[langgraph]'" in done.stdout


def test_core_import_does_not_pull_langgraph() -> None:
    code = "import sys, lance_context; print(any(m.startswith('langgraph') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
