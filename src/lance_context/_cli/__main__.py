"""``python -m lance_context._cli``: the same as the ``lance-context`` console script."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
