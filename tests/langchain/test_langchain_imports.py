"""The public door of the LangChain adapters, and what happens without LangChain."""

from __future__ import annotations

import subprocess
import sys

import lance_context.langchain as adapters


def test_public_names_are_pinned() -> None:
    assert sorted(adapters.__all__) == [
        "LanceByteStore",
        "LanceCache",
        "LanceChatMessageHistory",
        "LanceDocumentStore",
        "LanceRecordManager",
        "LanceRetriever",
        "LanceSemanticCache",
        "LanceVectorStore",
    ]
    for name in adapters.__all__:
        assert getattr(adapters, name).__doc__


def test_missing_langchain_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "import lance_context\n"
        "try:\n"
        "    import lance_context.langchain\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lance-context[langchain]'" in done.stdout


def test_core_import_does_not_pull_langchain() -> None:
    code = "import sys, lance_context; print(any(m.startswith('langchain') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
