"""Run an integration scenario as a user would: a script in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_scenario(framework: str, script: str, *args: str | Path) -> str:
    """Run ``integrations/<framework>/<script>``; fail on a non-zero exit or a FAIL line."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "integrations" / framework / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    assert "FAIL" not in done.stdout
    return done.stdout
