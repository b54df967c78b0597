"""What a Python value must be to be stored as JSON and read back as the same value.

``json.dumps`` quietly turns a key ``1`` into ``"1"`` (and ``{1: "a", "1": "b"}`` into an
object with one key twice, of which reading keeps one), and refuses NaN with a message that
does not say where it is. :func:`json_problem` finds such a value first, without recursion,
and says where it is (``metadata['scores'][2]``), so the record is refused before anything is
written instead of coming back changed.
"""

from __future__ import annotations

import math

__all__ = ["json_problem"]

_LEAVES = (str, int, float, bool, type(None))
#: (node, depth, parent entry, key or index in the parent)
_Entry = tuple[object, int, "_Entry | None", object]


def json_problem(value: object, name: str, limit: int | None = None) -> str | None:
    """What keeps ``value`` from round-tripping through JSON, or None when nothing does.

    Args:
        value: A dict, list or scalar to be stored as JSON (tuples are stored as lists).
        name: What the value is, for the message (``"metadata"``).
        limit: The deepest nesting of objects and arrays allowed; None: no limit.

    Returns:
        A message naming the first problem found and where it is.
    """
    # Each entry: (node, depth, parent entry, key in the parent); the path is built only for a message.
    stack: list[_Entry] = [(value, 1, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if isinstance(node, float):
            if not math.isfinite(node):
                where = _path(entry, name)
                return f"{where} is {node!r}: NaN and infinity cannot be stored as JSON; use None or a string"
        elif isinstance(node, _LEAVES):
            continue
        elif isinstance(node, (dict, list, tuple)):
            if limit is not None and depth > limit:
                return f"{name} nests deeper than {limit} levels"
            if isinstance(node, dict):
                for key in node:
                    if not isinstance(key, str):
                        return (
                            f"{_path(entry, name)} has the key {key!r} ({type(key).__name__}): JSON object "
                            "keys are strings, so it would come back as a different key; use str keys"
                        )
                stack.extend((child, depth + 1, entry, key) for key, child in node.items())
            else:
                stack.extend((child, depth + 1, entry, i) for i, child in enumerate(node))
        else:
            return (
                f"{_path(entry, name)} is a {type(node).__module__}.{type(node).__qualname__}, which JSON "
                "cannot hold; store str, int, float, bool, None, dict or list values (a datetime as its "
                "isoformat())"
            )
    return None


def _path(entry: _Entry, name: str) -> str:
    """Where ``entry`` is in the value: ``metadata['a'][0]``."""
    keys: list[object] = []
    while entry[2] is not None:
        keys.append(entry[3])
        entry = entry[2]
    return name + "".join(f"[{key!r}]" for key in reversed(keys))
