"""What every command shares: store options, output (Rich or JSON), confirmation, durations.

Stored content is printed as Rich ``Text`` built from plain strings, never as markup,
and control characters are shown escaped: a message holding ``[bold]`` or a terminal
escape sequence prints as those characters and cannot restyle or drive the terminal.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.text import Text

from ._keys import key_options, policy_from_context
from ._refs import MAIN, StoreSpec, View, open_view, tag_branch

__all__ = [
    "MAX_HITS",
    "TABLE_BOX",
    "F",
    "a_place",
    "as_of",
    "confirm",
    "console",
    "emit_json",
    "foreign_digits",
    "json_option",
    "narrow",
    "parse_duration",
    "safe",
    "spec_from",
    "store_arguments",
    "version_options",
    "when",
    "whole_number",
    "working",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Tables draw only a rule under the header: lighter, and narrower terminals fit more.
TABLE_BOX = box.SIMPLE_HEAD

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
#: Bidirectional overrides and isolates, and line and paragraph separators: invisible,
#: they reorder what follows them on the line (so a message could show other text than
#: it holds) or break it where no newline is. Right-to-left text itself needs none.
_INVISIBLE = re.compile(r"[\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: Tabs become spaces: Rich measures a tab as one cell but prints it as several, and
#: then wraps a line in the middle of a word.
_TAB_SIZE = 4


def safe(text: str) -> str:
    r"""``text`` with control characters (terminal escapes) shown as ``\x1b``, bidi controls as ``\u202e``."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.expandtabs(_TAB_SIZE))
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Trimmed:
    """stdout without the spaces Rich pads each line with to the table's width.

    Invisible on a terminal, those spaces end every line of a file or a pipe
    (``lance-context sessions URI > sessions.txt``) and get in the way of ``diff``
    and ``grep``.
    """

    _PADDING = re.compile(r" +(?=\n)")

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(self._PADDING.sub("", text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding
        return getattr(self._stream, name)


class _PipedConsole(Console):
    """A console whose closed pipe ends the command like any other write to it.

    Rich's own handling exits with status 1 and no message; raising lets
    :func:`._app.run` treat ``lance-context log URI | head`` as it treats
    ``click.echo``'s output there: exit 0, nothing on stderr.
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def console() -> Console:
    """The Rich console for stdout (colour only on a terminal; no markup guessing)."""
    return _PipedConsole(file=_Trimmed(sys.stdout), highlight=False, emoji=False, soft_wrap=False)  # type: ignore[arg-type]


def narrow(out: Console) -> bool:
    """Whether ``out`` is narrower than 100 columns (an 80-column terminal).

    Tables leave columns out there: Rich crops a row rather than wrap it below the
    columns' minimum widths.
    """
    return out.width < 100


def err_console() -> Console:
    """The Rich console for progress and notes on stderr."""
    return Console(stderr=True, highlight=False, emoji=False)


def styled(text: str, style: str = "") -> Text:
    """Stored or user text as a Rich ``Text`` (never parsed as markup)."""
    return Text(safe(text), style=style)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (datetimes as ISO 8601)."""

    def default(obj: object) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        if isinstance(obj, (set, frozenset, tuple)):
            return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
        return repr(obj)

    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=default))


def when(stamp: datetime | None) -> str:
    """``2026-11-30 14:12:37`` in UTC."""
    if stamp is None:
        return "-"
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _storage_options(values: Iterable[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"expected KEY=VALUE, got {item.split('=')[0]!r}…", param_hint="--storage-option"
            )
        options[key.strip()] = value
    return options


def a_place(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A store's or snapshot's location, refused when empty.

    ``lance-context import "$STORE" trip.jsonl`` with ``STORE`` unset passes ``""``, which
    Lance reads as the current folder: a store would be made or read there.
    """
    if value is not None and not value.strip():
        raise click.BadParameter(
            "it is empty (an unset variable?): give a local path or s3://bucket/prefix", ctx, param
        )
    return value


def store_arguments(*, branch: bool = True) -> Callable[[F], F]:
    """The store's URI, ``--storage-option KEY=VALUE`` (repeatable), ``--branch`` and the key options."""

    def decorate(fn: F) -> F:
        fn = key_options(fn)
        if branch:
            fn = click.option(
                "--branch", "-b", default=MAIN, show_default=True, metavar="NAME", help="Branch to use."
            )(fn)
        fn = click.option(
            "--storage-option",
            "-o",
            "storage_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="Object-store setting (endpoint, region, credentials); repeatable.",
        )(fn)
        return click.argument("uri", callback=a_place)(fn)

    return decorate


def version_options(fn: F) -> F:
    """``--version N`` / ``--tag NAME``: read the store as it was then."""
    fn = click.option("--tag", "-t", metavar="NAME", help="Read the version this tag names.")(fn)
    return click.option(
        "--version", "-V", "version", type=_VERSION_NUMBER, metavar="N", help="Read version N."
    )(fn)


def json_option(fn: F) -> F:
    """``--json``: print JSON for scripts instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


if TYPE_CHECKING:  # generic from Click 8.2; the extra allows 8.1
    _IntType = click.ParamType[int]
else:
    _IntType = click.ParamType


def foreign_digits(text: str) -> bool:
    r"""Whether ``text`` holds digits other than 0-9 (``int()`` and ``\d`` take Arabic-Indic "٣")."""
    return any(char.isdigit() and not char.isascii() for char in text)


class _WholeNumber(_IntType):
    """A whole number of at least ``least`` (and at most ``most``), refused in words (not ``x>=1``)."""

    name = "number"

    def __init__(
        self, least: int, what: str = "a whole number", too_small: str | None = None, most: int | None = None
    ) -> None:
        self.least, self.what, self.most = least, what, most
        self.too_small = too_small or f"{{number}} is not in the range x>={least}: give {least} or more"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, str) and foreign_digits(value):  # int() reads "٣" as 3
            self.fail(f"{value!r} is not {self.what}: write it with the digits 0-9", param, ctx)
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not {self.what}", param, ctx)
        if number < self.least:
            self.fail(self.too_small.format(number=number), param, ctx)
        if self.most is not None and number > self.most:
            self.fail(f"{number} is more than {self.most}: give {self.least} to {self.most}", param, ctx)
        return number


#: A version number: versions count from 1.
_VERSION_NUMBER = _WholeNumber(1, "a version number", "versions are numbered from 1, got {number}")


def whole_number(least: int, most: int | None = None) -> click.ParamType[int]:
    """An option type for counts: ``-k``, ``--limit``, ``--last``, ``--batch-size``."""
    return _WholeNumber(least, most=most)


#: The most hits one search returns (the core refuses more).
MAX_HITS = 1_000_000


def limit_option(things: str) -> Callable[[F], F]:
    """``--limit/-n N``: the newest N ``things`` (20 by default, 0 for all)."""
    return click.option(
        "--limit", "-n", type=whole_number(0), default=20, show_default=True, metavar="N",
        help=f"Newest N {things} (0: all).",
    )  # fmt: skip


@contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on stderr while a long step runs (silent when stderr is not a terminal)."""
    err = err_console()
    if not err.is_terminal:
        yield
        return
    with err.status(message):
        yield


def spec_from(uri: str, storage_options: Iterable[str], branch: str = MAIN) -> StoreSpec:
    """The store a command was given, with the key of ``--key-file`` (see :mod:`._keys`)."""
    return StoreSpec(uri, _storage_options(storage_options), branch, policy_from_context())


def as_of(spec: StoreSpec, version: int | None, tag: str | None, *, embedder: Any = None) -> View:
    """The view ``--version`` or ``--tag`` asks for (the latest when neither)."""
    if version is not None and tag is not None:
        raise click.UsageError("give --version or --tag, not both")
    if tag is not None:  # a tag names its branch too: read there unless another was asked for
        found = tag_branch(spec, tag)
        if found is not None and found != spec.branch:
            if spec.branch != MAIN:
                raise click.UsageError(
                    f"tag {tag!r} is on branch {found!r}, not {spec.branch!r}; pass -b {found}"
                )
            return open_view(spec, tag, branch=found, embedder=embedder)
    return open_view(spec, tag if tag is not None else version, embedder=embedder)


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive step; ``--yes`` answers for the user, no terminal means no."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Refusing without a terminal to ask on: pass --yes")
    click.confirm(question, abort=True, err=True)


#: ASCII digits only, as every number option takes them (``\d`` alone matches Arabic-Indic "٣").
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w|y)?\s*$", re.IGNORECASE | re.ASCII)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}
#: Longer ages than this cannot be subtracted from today (datetime's range).
_LONGEST = timedelta(days=365 * 1000)


def parse_duration(text: str, param_hint: str | None = None) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w``, ``1y`` (a bare number is days)."""
    match = _DURATION.match(text)
    if match is None:
        digits = " (write it with the digits 0-9)" if foreign_digits(text) else ""
        raise click.BadParameter(
            f"{text!r} is not a duration such as 30m, 12h, 7d, 2w or 1y{digits}", param_hint=param_hint
        )
    unit = (match.group(2) or "d").lower()
    age = timedelta(seconds=float(match.group(1)) * _UNITS[unit])
    if age > _LONGEST:
        raise click.BadParameter(f"{text!r} is longer than a thousand years", param_hint=param_hint)
    return age
