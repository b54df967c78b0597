r"""The JSON texts and regular expressions a metadata filter value may be stored as.

Metadata keeps numbers as they were given, so ``2`` and ``2.0`` (which Python holds
equal) are stored as different JSON text: ``[1, 2.0]`` reads back as ``[1,2.0]``.
A scalar number is compared as a number (see ``_filters._numeric``); a list or dict
holding whole numbers cannot be, and listing every int/float mix of its text would
take ``2**n`` forms for ``n`` whole numbers. Instead :func:`equals_pattern` builds one
regular expression, linear in the value's size, in which each whole number reads
``2(?:\.0)?``; Lance's ``regexp_like`` runs it on the stored JSON text.

The only SQL made here is :func:`type_condition`'s, from a fixed table and never from a
user's text; ``_filters`` passes every other text and pattern made here through
``sql_string``. Patterns use only the syntax of Rust's ``regex`` crate (what
DataFusion runs) and escape every value character that syntax treats as special.
"""

from __future__ import annotations

import json

from ._errors import InvalidFilterError

__all__ = [
    "element_pattern",
    "equals_pattern",
    "found_pattern",
    "has_whole_numbers",
    "json_forms",
    "json_text",
    "type_condition",
]

#: Magnitude below which a whole float and its int are the same number and both texts exist.
_WHOLE_LIMIT = 2**53

#: Characters Rust's ``regex::escape`` escapes: every one that can be special in a pattern.
_SPECIAL = frozenset("\\.+*?()|[]{}^$#&-~")

#: How deeply a list element sitting before a ``$contains`` match may nest (see ``element_pattern``).
_SKIP_DEPTH = 8


def json_text(value: object) -> str:
    """The compact JSON text Lance's JSON functions produce for ``value``.

    Lance's JSONB stores object keys sorted, so keys are sorted here too.
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidFilterError(f"filter value {value!r} is not JSON-able: {exc}") from exc


def _is_whole(item: object) -> bool:
    """A number stored as either ``2`` or ``2.0``, depending on how it was given."""
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return False
    return float(item).is_integer() and abs(item) < _WHOLE_LIMIT


def has_whole_numbers(value: object) -> bool:
    """Whether a list or dict holds a whole number anywhere, so its stored text may vary."""
    if isinstance(value, list):
        return any(_is_whole(x) or has_whole_numbers(x) for x in value)
    if isinstance(value, dict):
        return any(_is_whole(x) or has_whole_numbers(x) for x in value.values())
    return False


def json_forms(value: object) -> list[str]:
    """The exact JSON text of ``value``, with every whole number written as an int, and as a float.

    Enough for a scalar (``2`` matches ``2`` and ``2.0``); a list mixing the two forms
    needs :func:`equals_pattern`.
    """

    def numbers_as(kind: type, item: object) -> object:
        if _is_whole(item):
            return kind(item)
        if isinstance(item, list):
            return [numbers_as(kind, x) for x in item]
        if isinstance(item, dict):
            return {k: numbers_as(kind, x) for k, x in item.items()}
        return item

    forms = [json_text(value), json_text(numbers_as(int, value)), json_text(numbers_as(float, value))]
    return list(dict.fromkeys(forms))


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def _pattern(value: object) -> str:
    """A pattern for the JSON text of ``value`` with each whole number in either form."""
    if _is_whole(value):
        number = int(value)  # type: ignore[call-overload]
        return f"{'-?' if number == 0 else ''}{_escape(str(number))}(?:\\.0)?"  # -0.0 == 0 too
    if isinstance(value, list):
        return "\\[" + ",".join(_pattern(x) for x in value) + "\\]"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        members = (f"{_escape(json_text(k))}:{_pattern(x)}" for k, x in sorted(value.items()))
        return "\\{" + ",".join(members) + "\\}"
    forms = json_forms(value)  # a scalar, or a dict whose keys JSON turns into strings its own way
    return _escape(forms[0]) if len(forms) == 1 else f"(?:{'|'.join(_escape(f) for f in forms)})"


def _checked_patterns(values: list[object]) -> str:
    for value in values:
        json_text(value)  # rejects what JSON cannot hold before any pattern is built
    return "|".join(dict.fromkeys(_pattern(v) for v in values))


def equals_pattern(values: list[object]) -> str:
    """A pattern matching the whole stored JSON text of any of ``values``."""
    return f"^(?:{_checked_patterns(values)})$"


def found_pattern(values: list[object]) -> str:
    """A pattern matching stored JSON text with any of ``values`` anywhere in it: a cheap first test."""
    return f"(?:{_checked_patterns(values)})"


def _any_element(depth: int) -> str:
    """Any JSON value nested at most ``depth`` deep (a regular expression cannot count deeper)."""
    scalar = '"(?:[^"\\\\]|\\\\.)*"|[^\\[\\]{}",:]+'
    element = f"(?:{scalar})"
    for _ in range(depth):
        element = f"(?:{scalar}|[\\[{{](?:[,:]?{element})*[\\]}}])"
    return element


def element_pattern(values: list[object]) -> str:
    """A pattern matching a stored JSON array that has any of ``values`` as an element.

    The elements before the match are skipped whole, so a match nested inside an
    element is not taken for an element; an element nested deeper than
    ``_SKIP_DEPTH`` cannot be skipped (``_filters`` adds the exact ``json_forms``).
    """
    return f"^\\[(?:{_any_element(_SKIP_DEPTH)},)*(?:{_checked_patterns(values)})[,\\]]"


#: ``$type`` names and how the compact JSON text ``{t}`` of a value of that type starts.
_JSON_TYPES: dict[str, str] = {
    "object": "starts_with({t}, '{{')",
    "array": "starts_with({t}, '[')",
    "string": "starts_with({t}, '\"')",
    "number": "regexp_like({t}, '^-?[0-9]')",
    "boolean": "{t} IN ('true', 'false')",
    "null": "{t} = 'null'",
}


def type_condition(text: str, value: object) -> str:
    """``$type``: the JSON text ``text`` (an SQL expression) is of one of the types named.

    Args:
        text: The SQL expression of a metadata value's compact JSON text (NULL when missing).
        value: A type name (``object array string number boolean null``) or a list of them.

    Returns:
        A condition built only from the fixed table above (a missing key has no type).

    Raises:
        InvalidFilterError: ``value`` names no type, or one this table does not know.
    """
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    unknown = names is None or not names or any(not isinstance(n, str) or n not in _JSON_TYPES for n in names)
    if unknown:
        raise InvalidFilterError(
            f"$type takes one of {', '.join(_JSON_TYPES)} (or a list of them), got {value!r}"
        )
    assert names is not None
    tests = [_JSON_TYPES[str(n)].format(t=text) for n in dict.fromkeys(names)]
    return f"coalesce({' OR '.join(f'({t})' for t in tests)}, false)"
