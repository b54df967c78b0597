"""Fixtures for the command-line tests: a built store, copies of it, and CLI runners.

``run_cli`` runs a command as a real subprocess (``python -m lance_context._cli``, the
same entry point as the ``lance-context`` console script) with this checkout's sources on
``PYTHONPATH``, no terminal and a wide ``COLUMNS`` so tables are not wrapped. The ``cli``
fixture runs it in this process through ``main`` (the console script's entry point), to
keep many small cases fast. The ``in_process`` fixture runs it through ``main`` too, but
as ``run_cli`` would: the same environment, stdin that is not a terminal, and stdout and
stderr read at the file descriptors (so what Lance itself prints is seen), all put back
after each call.

A real subprocess stays where only one shows the behaviour: the console script and
``python -m``, colour forced by the environment, what a fresh interpreter imports, and
one test per command group so the real entry point stays covered.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import lance_context
from lance_context._cli import main

from ._stores import Built, build_store

SRC = str(Path(lance_context.__file__).resolve().parents[1])


@dataclass(frozen=True)
class Result:
    """What one command printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    env.pop("FORCE_COLOR", None)
    env.pop("LANCE_CONTEXT_DEBUG", None)
    env.update(extra or {})
    return env


def _start(args: tuple[str, ...], env: Mapping[str, str] | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lance_context._cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,  # no terminal to ask on
        text=True,
        env=cli_env(env),
    )


def _finish(process: subprocess.Popen[str], timeout: float) -> Result:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return Result(process.returncode, out, err)


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> Result:
    """Run ``lance-context ARGS`` in a subprocess and wait for it."""
    return _finish(_start(args, env), timeout)


def run_many(
    *calls: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120
) -> list[Result]:
    """Run independent read commands side by side (each its own process); results in order."""
    started = [_start(tuple(args), env) for args in calls]
    return [_finish(process, timeout) for process in started]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The shared store of every read test (never written to)."""
    return build_store(str(tmp_path_factory.mktemp("cli") / "memory.lance"))


@pytest.fixture
def store_copy(built: Built, tmp_path: Path) -> Callable[[], Built]:
    """A private copy of the built store, for tests that write."""

    def copy() -> Built:
        target = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}.lance"
        shutil.copytree(built.uri, target)
        return Built(str(target), built.tagged, built.answered, built.deleted, built.latest)

    return copy


def snapshot(path: str) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with its size and modification time."""
    found = {}
    for root, _, files in os.walk(path):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), path)] = (stat.st_size, stat.st_mtime_ns)
    return found


@dataclass(frozen=True)
class Ran:
    """What a command run in this process gave: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


Cli = Callable[..., Ran]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``lance-context ARGS...`` in this process."""

    def call(*args: str | Path) -> Ran:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return call


@contextmanager
def _as_in_a_subprocess(env: Mapping[str, str] | None) -> Iterator[None]:
    """The environment, stdin and working folder ``run_cli`` gives its subprocess; put back after."""
    saved_env, saved_stdin, saved_cwd = dict(os.environ), sys.stdin, os.getcwd()
    wanted = cli_env(env)
    for name in [name for name in os.environ if name not in wanted]:
        del os.environ[name]
    os.environ.update({name: value for name, value in wanted.items() if os.environ.get(name) != value})
    sys.stdin = io.StringIO("")  # like stdin=DEVNULL: no terminal to ask on
    try:
        yield
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        for name in [name for name in os.environ if name not in saved_env]:
            del os.environ[name]
        os.environ.update({n: v for n, v in saved_env.items() if os.environ.get(n) != v})


class InProcess:
    """``run_cli`` and ``run_many`` with the same arguments and results, run in this process."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd

    def __call__(self, *args: str | Path, env: Mapping[str, str] | None = None) -> Result:
        """Run ``lance-context ARGS`` through ``main``; what it printed and returned."""
        self._capfd.readouterr()  # only what this command prints
        with _as_in_a_subprocess(env):
            code = main([str(a) for a in args])
        captured = self._capfd.readouterr()
        return Result(code, captured.out, captured.err)

    def many(self, *calls: Sequence[str | Path], env: Mapping[str, str] | None = None) -> list[Result]:
        """Run commands one after another; results in order."""
        return [self(*args, env=env) for args in calls]


@pytest.fixture
def in_process(capfd: pytest.CaptureFixture[str]) -> InProcess:
    """Run ``lance-context ARGS...`` in this process as ``run_cli`` runs it in a subprocess."""
    return InProcess(capfd)
