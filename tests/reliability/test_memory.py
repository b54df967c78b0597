"""A long-running writer's memory levels off: Lance's caches are bounded (``CachePolicy``).

With Lance's default caches a process grew ~80 KB per one-record add (over 1 GB after
10,000); the writer runs in a fresh process so its resident size is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .report import TALLY

pytestmark = pytest.mark.reliability

_WRITER = textwrap.dedent(
    """
    import json, os, sys
    from lance_context import ContextRecord, ContextStore

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    path, adds = sys.argv[1], int(sys.argv[2])
    store = ContextStore.open(path, embedder=None)
    samples = {}
    for i in range(adds):
        store.add(ContextRecord.from_content(f"message {i} " * 5, run_id=f"s{i % 100}"))
        if (i + 1) % (adds // 12) == 0:
            samples[i + 1] = rss_mb()
    print(json.dumps(samples))
    """
)


@pytest.mark.long_only  # make reliability only: too slow for make test
def test_resident_memory_levels_off_over_many_adds(tmp_path: Path, reliability_long: bool) -> None:
    adds = 12_000 if reliability_long else 3_000
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(tmp_path / "store"), str(adds)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    samples = {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    # the last third: the bounded caches fill during the first two (most of the growth
    # by 1,000-2,000 adds: merges of the files a process just wrote read nothing back,
    # so Lance's caches fill later than when every merge read its files), after which
    # only the version history itself grows
    warm = adds // 12 * 8
    first, last = samples[warm], samples[adds]
    per_add_kb = (last - first) * 1024 / (adds - warm)
    TALLY.add(writes_attempted=adds, writes_committed=adds)
    print(f"RSS {first:.0f} MB after {warm} adds, {last:.0f} MB after {adds}: {per_add_kb:.1f} KB/add")
    assert per_add_kb < 15, f"memory keeps growing: {per_add_kb:.1f} KB per add ({samples})"
