"""The ``lance-context`` command line: see a store's memory and history from a shell.

``main`` is the console script declared in ``pyproject.toml``. Nothing here is imported
by ``import lance_context``; Click and Rich are imported only when the command runs,
and a missing one is reported with the extra to install.

The read model the commands print (:mod:`._conversation`, :mod:`._facts`,
:mod:`._refs`, :mod:`._threads`) is shared with the web inspector
(``lance_context._inspector``), so both show the same things the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code (the console script exits with it)."""
    try:
        from ._app import run
    except ImportError as exc:  # click or rich missing
        print(
            f"lance-context: error: the command line needs {exc.name or 'click and rich'}: "
            "pip install 'lance-context[cli]'",
            file=sys.stderr,
        )
        return 1
    return run(argv)
