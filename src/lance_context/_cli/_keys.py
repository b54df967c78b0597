"""An encrypted store's key on the command line: ``--key-file`` and ``LANCE_CONTEXT_KEY_FILE``.

A key is never given on the command line itself, where ``ps`` and the shell's
history would show it: commands take the path of a file holding it. A key file holds
one AES key of 16, 24 or 32 bytes in one of three forms, tried in this order:

| form   | the file holds                                            | made with                 |
|--------|-----------------------------------------------------------|---------------------------|
| hex    | 32, 48 or 64 hex digits (surrounding whitespace ignored)  | ``openssl rand -hex 32``  |
| base64 | 24, 32 or 44 characters of standard, padded base64        | ``openssl rand -base64 32``|
| raw    | exactly 16, 24 or 32 bytes, nothing else                  | ``head -c 32 /dev/urandom``|

Anything else is refused, naming these forms. (Random raw bytes that happen to read
as hex or base64 text are as likely as guessing the key.)

Keys from before a rotation (``rotate_key()`` in Python) go in their own files, one
key per file, given with ``--previous-key-file`` (repeatable) or
``LANCE_CONTEXT_PREVIOUS_KEY_FILES`` (paths separated by ``:``). One key per file is
how secret managers deliver secrets (a mounted file each), a rotation adds a path
rather than editing a key file, and raw keys could not be told apart in one file.

The options sit on every command through :func:`key_options` and leave their values
in the Click context, where :func:`policy_from_context` reads them when a command
builds its store spec, so no command's signature carries them. Key bytes are never
printed: messages name the file and the key's id (an HMAC that does not reveal it).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lance_context import EncryptionError, EncryptionPolicy, KeyMissingError, WrongKeyError

__all__ = [
    "KEY_FILE_ENV",
    "PREVIOUS_KEY_FILES_ENV",
    "explain",
    "key_options",
    "parse_key",
    "policy_from_context",
]

F = TypeVar("F", bound=Callable[..., Any])

KEY_FILE_ENV = "LANCE_CONTEXT_KEY_FILE"
PREVIOUS_KEY_FILES_ENV = "LANCE_CONTEXT_PREVIOUS_KEY_FILES"
_SIZES = (16, 24, 32)
_HEX = re.compile(rb"[0-9a-fA-F]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_FORMS = (
    "a key file holds one key of 16, 24 or 32 bytes: the raw bytes (nothing else in the file), "
    "or their hex (32, 48 or 64 hex digits) or base64 (24, 32 or 44 characters) text"
)
_META = "lance_context.keys"
_POLICY = "lance_context.policy"
#: How a command-line user gives a key (``{which}``: "its" or "that").
GIVE_KEY = "give {which} key with --key-file PATH (or " + KEY_FILE_ENV + "=PATH)"


def parse_key(data: bytes) -> bytes | None:
    """The key a key file's bytes hold (hex, then base64, then raw), or None when they hold none."""
    text = data.strip()
    if _HEX.fullmatch(text) and len(text) in (32, 48, 64):
        return bytes.fromhex(text.decode("ascii"))
    if _BASE64.fullmatch(text) and len(text) in (24, 32, 44):
        try:
            key = base64.b64decode(text, validate=True)
        except binascii.Error:
            key = b""
        if len(key) in _SIZES:
            return key
    return data if len(data) in _SIZES else None


def _read_key(path: str, hint: str) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read(4097)  # a key file is tiny: do not read a large file given by mistake
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read key file {path}: {exc.strerror or exc}", param_hint=hint
        ) from None
    key = parse_key(data)
    if key is None:
        size = "is empty" if not data else f"holds {len(data) if len(data) <= 4096 else 'over 4096'} bytes"
        raise click.BadParameter(f"key file {path} {size}, which is not a key; {_FORMS}", param_hint=hint)
    return key


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    source = ctx.get_parameter_source(param.name or "")
    from_env = source is click.core.ParameterSource.ENVIRONMENT
    ctx.meta.setdefault(_META, {})[param.name] = (value, from_env)


def key_options(fn: F) -> F:
    """``--key-file PATH`` and ``--previous-key-file PATH`` (repeatable), or their environment variables."""
    fn = click.option(
        "--previous-key-file", "previous_key_files", multiple=True, envvar=PREVIOUS_KEY_FILES_ENV,
        type=click.Path(dir_okay=False), metavar="PATH", expose_value=False, callback=_remember,
        help="A key from before a rotation, to read older versions; repeatable "
        f"(or {PREVIOUS_KEY_FILES_ENV}, paths separated by ':').",
    )(fn)  # fmt: skip
    return click.option(
        "--key-file", "key_file", envvar=KEY_FILE_ENV, type=click.Path(dir_okay=False), metavar="PATH",
        expose_value=False, callback=_remember,
        help="File holding an encrypted store's key: raw 16/24/32 bytes, or hex or base64 text "
        f"(or {KEY_FILE_ENV}).",
    )(fn)  # fmt: skip


def policy_from_context(ctx: click.Context | None = None) -> EncryptionPolicy | None:
    """The encryption policy the running command was given (None: no key file)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return None
    if _POLICY in ctx.meta:
        found: EncryptionPolicy | None = ctx.meta[_POLICY]
        return found
    given = ctx.meta.get(_META, {})
    key_file, key_env = given.get("key_file", (None, False))
    previous, previous_env = given.get("previous_key_files", ((), False))
    policy = None
    if key_file:
        key = _read_key(key_file, KEY_FILE_ENV if key_env else "--key-file")
        hint = PREVIOUS_KEY_FILES_ENV if previous_env else "--previous-key-file"
        older = tuple(_read_key(path, hint) for path in previous or ())
        policy = EncryptionPolicy(key=key, previous_keys=older)
    elif previous:
        raise click.UsageError(
            "--previous-key-file reads versions sealed before a rotation, beside the current key: "
            "give --key-file too"
        )
    ctx.meta[_POLICY] = policy
    return policy


def explain(exc: EncryptionError, give: str = GIVE_KEY) -> str:
    """An encryption error in the words of whoever gives the key (``give``: how to give it).

    The core's messages name Python arguments (``EncryptionPolicy(key=...)``); a
    command-line user gives a key file instead. Other messages are kept as they are.
    """
    if isinstance(exc, KeyMissingError):
        done = "nothing was written" if exc.writing else "its records cannot be read"
        return f"this store is encrypted and no key was given, so {done}: {give.format(which='its')}"
    if isinstance(exc, WrongKeyError) and exc.uri is not None:
        return (
            f"the key given does not open {exc.uri}: the store is sealed with key {exc.sealed_with}, "
            f"the key file holds key {exc.given}; nothing was read or written: " + give.format(which="its")
        )
    if isinstance(exc, WrongKeyError) and exc.record_id is not None:
        return (
            f"the key given does not open record {exc.record_id!r} of session {exc.run_id!r}, which is "
            f"sealed with key {exc.sealed_with}: {give.format(which='that')} "
            "(or --previous-key-file for a key from before a rotation)"
        )
    return str(exc)
