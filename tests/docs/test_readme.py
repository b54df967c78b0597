"""The README's Python examples run as printed, in order, as a reader follows them.

Every ```python block runs in one fresh interpreter in an empty directory, so later
blocks see what earlier ones made (the store, ``docs``). The few names the README
leaves to the reader (a chat model, an LLM, tools, a document loader, a reranker) are
defined first with the frameworks' own fakes; nothing else is added or changed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

READER_SUPPLIES = textwrap.dedent(
    """
    from langchain_core.documents import Document
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from llama_index.core.llms import MockLLM


    class _Model(GenericFakeChatModel):
        def bind_tools(self, tools, **kwargs):
            return self


    class _Loader:
        def load(self):
            return [Document("Returns are accepted within 30 days.", metadata={"source": "faq.md"})]


    model = _Model(messages=iter([AIMessage(f"answer {i}") for i in range(100)]))
    tools = []
    llm = MockLLM()
    loader = _Loader()
    cross_encoder = lambda query, texts: [float(len(set(query.split()) & set(t.split()))) for t in texts]
    """
)


def python_blocks(text: str) -> list[str]:
    """The README's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_examples_run_as_printed(tmp_path: Path) -> None:
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    script = READER_SUPPLIES + "".join(
        f"\nprint('--- README block {n}', flush=True)\n{block}" for n, block in enumerate(blocks, 1)
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    last = [line for line in done.stdout.splitlines() if line.startswith("--- README block")][-1:]
    assert done.returncode == 0, f"{last}: {done.stderr[-3000:]}"
    assert f"--- README block {len(blocks)}" in done.stdout
