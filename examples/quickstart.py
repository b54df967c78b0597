"""The seed README's example, then time travel, tags, a branch and search.

Run with `make demo`: it writes ./context.lance afresh on every run (the demo's own
store, replaced each time). `python examples/quickstart.py PATH` writes PATH instead,
which must not exist yet: the demo never deletes a store it did not make.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import PIL.Image

from lance_context.api import Context

STORE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("context.lance")
if len(sys.argv) > 1 and STORE.exists():
    sys.exit(f"{STORE} already exists: give a new path (the demo builds its store from scratch)")
shutil.rmtree(STORE, ignore_errors=True)  # the default store: a fresh demo every run

# --- the seed example, verbatim -------------------------------------------------
ctx = Context.create(str(STORE))
ctx.add("user", "Where should I travel in spring?")
ctx.add("assistant", PIL.Image.new("RGB", (2, 2), color="teal"))
first_version = ctx.version()
ctx.add("assistant", "Let me fetch suggestions…")
ctx.checkout(first_version)
print(ctx.entries())  # the two entries of first_version, in order, with the image decodable

# --- what the entries hold ----------------------------------------------------
for entry in ctx.entries():
    shown = entry.text or "a {}x{} image".format(*entry.content.size)
    print(f"  v{first_version} {entry.role:9} {entry.content_type:10} {shown}")

# --- back to the latest version, then a tag, search, a branch and the log -----
ctx.checkout_latest()
ctx.tag("before-answer")
ctx.add("assistant", "Kyoto for the cherry blossoms, or Lisbon for mild weather.")
print("latest:", [e.text or e.content_type for e in ctx.entries()])

hits = ctx.search("which city has sakura trees?", k=1)
print("search:", hits[0].record.text, f"(score {hits[0].score:.2f})")

alt = ctx.branch("alternative", from_version="before-answer")
alt.add("assistant", "Try Patagonia: spring there is in October.")
print("branch 'alternative':", [e.text for e in alt.entries()][-1])
print("main is unchanged:    ", [e.text for e in ctx.entries()][-1])

for info in ctx.versions()[-4:]:
    records = f"{info.rows} record{'' if info.rows == 1 else 's'} in all"
    tags = f", tagged {', '.join(info.tags)}" if info.tags else ""
    print(f"  version {info.version}: {info.operation} ({records}{tags})")
