"""The public names of lance_context.llama_index, and its optional dependency."""

from __future__ import annotations

import subprocess
import sys

import lance_context.llama_index as adapters


def test_public_names_are_pinned() -> None:
    assert sorted(adapters.__all__) == [
        "DEFAULT_CHAT_NAMESPACE",
        "DEFAULT_NODE_NAMESPACE",
        "LanceAsyncChatStore",
        "LanceChatStore",
        "LanceEmbedding",
        "LanceMemory",
        "LanceVectorStore",
        "message_to_record",
        "record_to_message",
    ]
    for name in adapters.__all__:
        assert getattr(adapters, name) is not None


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_core_does_not_import_llama_index() -> None:
    done = run("import sys, lance_context; print('llama_index' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_missing_llama_index_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['llama_index'] = None; sys.modules['llama_index.core'] = None\n"
        "try:\n    import lance_context.llama_index\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = run(code)
    assert done.returncode == 0, done.stderr
    assert "pip install 'lance-context[llama-index]'" in done.stdout
