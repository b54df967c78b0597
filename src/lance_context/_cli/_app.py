"""The ``lance-context`` command group: global options, error handling, command list.

Why Click rather than Typer: every command shares one set of store options (a URI,
repeatable ``--storage-option``, ``--branch``, ``--version``/``--tag``, ``--json``),
which Click expresses as plain decorators stacked on each command
(:mod:`._common`), and its group takes commands from any module with
``add_command``, so later commands (``review``, ``merge``, ``replay``, retention) are
one module and one line in :data:`COMMAND_MODULES`. Typer builds the same Click objects
from type hints, but renders errors as multi-line Rich panels, and this tool promises
errors of one line; with Click, :func:`run` owns every message.

Adding a command: write a module with ``COMMANDS = [...]`` (Click commands using the
decorators of :mod:`._common`) and add its name to :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import click

from lance_context import EncryptionError, LanceContextError, __version__

from ._examples import document
from ._keys import explain

__all__ = ["COMMAND_MODULES", "cli", "run"]

#: Modules whose ``COMMANDS`` make up the command line, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "_read",
    "_show",
    "_ops",
    "_maintain",
    "_review",
    "_transfer",
    "_import",
    "_govern",
    "_serve",
)


@dataclass(frozen=True)
class Settings:
    """Options given before the command name."""

    debug: bool = False
    """Print tracebacks of errors."""


class _Group(click.Group):
    """Lists commands in the order they were added (reading first, then writing)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="\b\nExamples:\n  lance-context log memory.lance -n 5\n  lance-context show memory.lance trip\n"
    "  lance-context search --help        # any command's options and examples",
)
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
@click.version_option(__version__, prog_name="lance-context", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """See and manage an agent's memory: sessions, versions, diffs, search, tags and branches.

    Every command takes the store's URI (a local path or s3://bucket/prefix). Read
    commands never write; commands that delete or rewrite ask first (or take --yes).
    """
    ctx.obj = Settings(debug=debug)


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for command in module.COMMANDS:
            document(command)
            cli.add_command(command)


_register()


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "failed"


def _fail(prefix: str, message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    click.echo(f"{prefix}: error: {_one_line(message)}", err=True)
    return code


class _PipeClosed(Exception):
    """Standard output's reader went away (``lance-context export URI - | head``)."""


class _PipeGuard:
    """Standard output for one run: a closed pipe raises ``_PipeClosed``, not ``BrokenPipeError``.

    Click turns a ``BrokenPipeError`` raised inside a command into ``sys.exit(1)``; this
    exception passes through it to :func:`run`, which exits 0 as the shell's own
    tools do when their reader has all it wanted.
    """

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))  # type: ignore[attr-defined]
        except BrokenPipeError:
            raise _PipeClosed from None

    def flush(self) -> None:
        try:
            self._stream.flush()  # type: ignore[attr-defined]
        except BrokenPipeError:
            raise _PipeClosed from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Every error is one line on stderr with a non-zero exit code; ``--debug`` (or
    ``LANCE_CONTEXT_DEBUG=1``) adds the traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not [a for a in args if a != "--debug"]:
        args.append("--help")  # a bare `lance-context` shows what it can do
    debug = "--debug" in args or os.environ.get("LANCE_CONTEXT_DEBUG", "") not in ("", "0")
    prog = "lance-context"
    stdout = sys.stdout
    sys.stdout = _PipeGuard(stdout)  # type: ignore[assignment]
    try:
        result = cli.main(args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return _fail(prog, "aborted: nothing was changed (pass --yes to skip the question)", 1, False)
    except click.UsageError as exc:
        where = f"{prog} {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else prog
        return _fail(where, f"{exc.format_message()} (see --help)", 2, False)
    except click.ClickException as exc:
        return _fail(prog, exc.format_message(), exc.exit_code, debug)
    except EncryptionError as exc:  # the core's advice names Python arguments: say --key-file
        return _fail(prog, explain(exc), 1, debug)
    except LanceContextError as exc:
        return _fail(prog, str(exc), 1, debug)
    except LookupError as exc:  # NotFound, KeyError: the message without KeyError's quotes
        return _fail(prog, str(exc.args[0]) if exc.args else str(exc), 1, debug)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", 130, debug)
    except (BrokenPipeError, _PipeClosed):  # `lance-context log URI | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return 0
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError, OverflowError) as exc:
        return _fail(prog, f"{type(exc).__name__}: {exc}", 1, debug)
    finally:
        sys.stdout = stdout
    return int(result) if isinstance(result, int) else 0
