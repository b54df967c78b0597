"""What ``--help`` adds to each command: a one-line summary for the command list, and examples.

Kept apart from the commands so that each module holds behaviour, and the examples of
the whole command line can be read (and kept consistent) in one place.
"""

from __future__ import annotations

import click

__all__ = ["EXAMPLES", "SUMMARIES", "document"]

#: The command list's line for each command: one line of an 80-column terminal (57 characters).
SUMMARIES: dict[str, str] = {
    "info": "Records, sessions, versions, branches, tags, storage.",
    "sessions": "Each session: kind, records, roles, last activity.",
    "log": "Versions newest first: rows added and removed, tags.",
    "show": "A conversation as a person reads it.",
    "diff": "Records added and removed between two versions.",
    "search": "Vector, text or hybrid search, as of any version.",
    "tag": "Name a version; without NAME, list the tags.",
    "branch": "Create a branch; without NAME, list the branches.",
    "restore": "Make a past version the latest again (history kept).",
    "compact": "Merge small fragments and refresh indexes.",
    "cleanup": "Delete the files of old versions to free disk space.",
    "reembed": "Re-embed every record with another embedder.",
    "review": "What merging a branch would change, before merging.",
    "merge": "Apply a branch's changes as one version.",
    "searches": "Recorded searches, newest first.",
    "replay": "Re-run a recorded search, as logged or today.",
    "export": "Write records to JSON Lines or Parquet.",
    "import": "Read an export into a store (created if missing).",
    "forget": "Erase records from every version and file, verified.",
    "snapshot": "Write a version as a self-contained store elsewhere.",
    "import-snapshot": "Copy a snapshot here, or merge its records in.",
    "serve": "Browse the store in a web browser (read-only).",
}

#: Each command's examples, as typed (``memory.lance`` is the store).
EXAMPLES: dict[str, list[str]] = {
    "info": ["lance-context info memory.lance", "lance-context info memory.lance -t before-answer --json"],
    "sessions": [
        "lance-context sessions memory.lance",
        "lance-context sessions memory.lance -n langgraph.checkpoints",
    ],
    "log": ["lance-context log memory.lance -n 5", "lance-context log memory.lance -b what-if -n 0 --json"],
    "show": ["lance-context show memory.lance trip --last 10", "lance-context show memory.lance trip -V 12"],
    "diff": [
        "lance-context diff memory.lance 12            # version 12 to the latest",
        "lance-context diff memory.lance before-answer what-if",
    ],
    "search": [
        'lance-context search memory.lance "allergies" -k 5',
        'lance-context search memory.lance "peanuts" -m text -s trip -t before-answer',
    ],
    "tag": ["lance-context tag memory.lance before-answer", "lance-context tag memory.lance old -V 12"],
    "branch": ["lance-context branch memory.lance what-if --from 12", "lance-context branch memory.lance"],
    "restore": [
        "lance-context restore memory.lance 12",
        "lance-context restore memory.lance before-answer -s trip",
    ],
    "compact": ["lance-context compact memory.lance"],
    "cleanup": [
        "lance-context cleanup memory.lance --older-than 7d --keep-versions 10",
        "lance-context cleanup memory.lance --retention all=7d,daily=1y --yes",
    ],
    "reembed": ["lance-context reembed memory.lance -e st:all-MiniLM-L6-v2"],
    "review": ['lance-context review memory.lance consolidate -q "Ada allergies" -k 3'],
    "merge": ["lance-context merge memory.lance consolidate --on-conflict theirs"],
    "searches": ["lance-context searches memory.lance -n 5"],
    "replay": ["lance-context replay memory.lance f81ae5942557 --at latest"],
    "export": [
        "lance-context export memory.lance trip.jsonl -s trip",
        "lance-context export memory.lance all.parquet -t before-answer",
    ],
    "import": ["lance-context import copy.lance trip.jsonl"],
    "forget": [
        "lance-context forget memory.lance -s trip --dry-run",
        'lance-context forget memory.lance --where \'{"metadata.user": "ada"}\' --yes',
    ],
    "snapshot": ["lance-context snapshot memory.lance backup.lance -t before-answer"],
    "import-snapshot": ["lance-context import-snapshot memory.lance backup.lance"],
    "serve": ["lance-context serve memory.lance --port 8765"],
}


def document(command: click.Command) -> None:
    """Give ``command`` its summary and an ``Examples:`` section under its options."""
    name = command.name or ""
    if name in SUMMARIES:
        command.short_help = SUMMARIES[name]
    if name in EXAMPLES:
        # \b: Click keeps the lines as they are instead of rewrapping them
        command.epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
