"""An encrypted store on the command line and in the inspector: ``--key-file`` and its variable.

The store is built with the Python API (``EncryptionPolicy(key=...)``); commands get its
key from a file (raw, hex or base64) through ``--key-file`` or ``LANCE_CONTEXT_KEY_FILE``.
Without the key, or with another one, a command says so in one line naming the option;
a file that holds no key is refused naming the forms accepted; and no output, error or
page ever shows the key.
"""

from __future__ import annotations

import base64
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from lance_context import ContextRecord, ContextStore, EncryptionError, EncryptionPolicy, HashingEmbedder
from lance_context._cli._keys import KEY_FILE_ENV, PREVIOUS_KEY_FILES_ENV, parse_key

from ..inspector.conftest import serve
from .conftest import InProcess, Result

PIN = "My PIN is 1234"
TRIP = "Trip to Lisbon in May"


@dataclass(frozen=True)
class Sealed:
    """An encrypted store and files holding its key in each form (and some that are not keys)."""

    uri: str
    key: bytes
    first: int  # version tagged "first": session a only
    files: dict[str, str]  # raw, hex, base64, wrong, not-a-key, newline, empty

    def copy(self, target: Path) -> str:
        shutil.copytree(self.uri, target)
        return str(target)


def _build(folder: Path) -> Sealed:
    key = os.urandom(32)
    uri = str(folder / "sealed.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(32), encryption=EncryptionPolicy(key=key))
    store.add([
        ContextRecord.from_content(PIN, run_id="a", role="user"),
        ContextRecord.from_content("Noted, I will keep it safe.", run_id="a", role="assistant"),
    ])  # fmt: skip
    store.tag("first")
    first = store.version()
    store.add(ContextRecord.from_content(TRIP, run_id="b", role="user"))
    contents = {
        "raw": key,
        "hex": key.hex().encode() + b"\n",
        "base64": base64.b64encode(key) + b"\n",
        "wrong": os.urandom(32),
        "not-a-key": b"hunter2\n",
        "newline": key + b"\n",  # 33 bytes: a raw key with something after it
        "empty": b"",
    }
    files = {}
    for name, data in contents.items():
        path = folder / f"{name}.key"
        path.write_bytes(data)
        files[name] = str(path)
    return Sealed(uri, key, first, files)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Sealed:
    """The shared encrypted store of the read tests (never written to)."""
    return _build(tmp_path_factory.mktemp("sealed"))


def _forms(key: bytes) -> list[str]:
    return [key.hex(), key.hex().upper(), base64.b64encode(key).decode(), repr(key), key.decode("latin-1")]


def _no_key_in(key: bytes, *results: Result) -> None:
    for result in results:
        for form in _forms(key):
            assert form not in result.out and form not in result.err


def _one_line_error(result: Result, code: int = 1) -> str:
    assert result.code == code, (result.out, result.err)
    assert (
        result.err.count("\n") == 1 and "Traceback" not in result.err and "EncryptionPolicy" not in result.err
    )
    return result.err


def test_a_key_file_holds_raw_bytes_or_their_hex_or_base64_text() -> None:
    for size in (16, 24, 32):
        key = os.urandom(size)
        for data in (
            key,
            key.hex().encode(),
            key.hex().upper().encode() + b"\r\n",
            base64.b64encode(key) + b"\n",
        ):
            assert parse_key(data) == key
    for data in (
        b"",
        b"hunter2",
        os.urandom(33),
        os.urandom(20).hex().encode(),
        base64.b64encode(os.urandom(20)),
    ):
        assert parse_key(data) is None


def test_read_commands_open_the_store_with_the_key_file_or_the_variable(
    in_process: InProcess, sealed: Sealed
) -> None:
    uri, files = sealed.uri, sealed.files
    given = ["--key-file", files["hex"]]
    info, sessions, show, log, diff, search, tags, as_json = in_process.many(
        ["info", uri, *given],
        ["sessions", uri, *given],
        ["show", uri, "a", *given],
        ["log", uri, *given],
        ["diff", uri, "first", "main", *given],
        ["search", uri, "Lisbon in May", "-k", "1", *given],
        ["tag", uri, *given],
        ["show", uri, "a", "--json", *given],
    )
    assert info.code == 0 and "hashing (32 dimensions)" in info.out
    assert sessions.code == 0 and "2 sessions" in sessions.out
    assert show.code == 0 and PIN in show.out
    assert log.code == 0 and "first" in log.out
    assert diff.code == 0 and f"+ user       {TRIP}" in diff.out
    assert search.code == 0 and TRIP in search.out
    assert tags.code == 0 and f"first  main@{sealed.first}" in tags.out
    assert PIN in str(as_json.json())
    by_env = [
        in_process("show", uri, "b", env={KEY_FILE_ENV: files[form]}) for form in ("raw", "hex", "base64")
    ]
    assert all(r.code == 0 and TRIP in r.out for r in by_env)
    searched = in_process("search", uri, "Lisbon", "--json", env={KEY_FILE_ENV: files["base64"]})
    assert searched.json()["hits"][0]["text"] == TRIP
    _no_key_in(sealed.key, info, sessions, show, log, diff, search, tags, as_json, *by_env, searched)


def test_without_the_key_commands_say_to_give_it_in_one_line(in_process: InProcess, sealed: Sealed) -> None:
    uri = sealed.uri
    refused = in_process.many(
        ["show", uri, "a"],
        ["diff", uri, "first", "main"],
        ["search", uri, "Lisbon"],
        ["export", uri, str(Path(sealed.uri).parent / "never.jsonl")],
    )
    for result in refused:
        err = _one_line_error(result)
        assert "this store is encrypted and no key was given" in err
        assert f"--key-file PATH (or {KEY_FILE_ENV}=PATH)" in err
    assert not (Path(sealed.uri).parent / "never.jsonl").exists()
    # what the files show without the key still shows: the history, sessions and tags
    for result in in_process.many(["info", uri], ["log", uri], ["sessions", uri], ["tag", uri]):
        assert result.code == 0, result.err
    text = in_process("search", uri, "Lisbon", "--mode", "text", "--key-file", sealed.files["raw"])
    assert "encrypts its text" in _one_line_error(text) and "--mode vector" in text.err


def test_a_wrong_key_does_not_open_the_store(in_process: InProcess, sealed: Sealed) -> None:
    wrong = ["--key-file", sealed.files["wrong"]]
    results = in_process.many(["info", sealed.uri, *wrong], ["show", sealed.uri, "a", *wrong])
    results.append(
        in_process("--debug", "search", sealed.uri, "Lisbon", env={KEY_FILE_ENV: sealed.files["wrong"]})
    )
    for result in results[:2]:
        err = _one_line_error(result)
        assert f"the key given does not open {sealed.uri}" in err and "nothing was read or written" in err
    debug = results[2]  # --debug adds the traceback, which holds no key either
    assert debug.code == 1 and "Traceback" in debug.err and "the key given does not open" in debug.err
    _no_key_in(sealed.key, *results)


def test_files_that_hold_no_key_are_refused_naming_the_forms(
    in_process: InProcess, sealed: Sealed, tmp_path: Path
) -> None:
    files = sealed.files
    bad = in_process.many(
        ["show", sealed.uri, "a", "--key-file", files["not-a-key"]],
        ["show", sealed.uri, "a", "--key-file", files["newline"]],
        ["show", sealed.uri, "a", "--key-file", files["empty"]],
        ["info", sealed.uri, "--key-file", str(tmp_path / "missing.key")],
        ["show", sealed.uri, "a", "--previous-key-file", files["raw"]],
    )
    bad.append(in_process("show", sealed.uri, "a", env={KEY_FILE_ENV: files["not-a-key"]}))
    for result in (*bad[:3], bad[5]):
        err = _one_line_error(result, 2)
        assert "which is not a key" in err and "16, 24 or 32 bytes" in err
        assert "hex (32, 48 or 64 hex digits)" in err and "base64 (24, 32 or 44 characters)" in err
    assert "holds 8 bytes" in bad[0].err and "holds 33 bytes" in bad[1].err and "is empty" in bad[2].err
    assert KEY_FILE_ENV in bad[5].err and "hunter2" not in bad[0].err
    assert "cannot read key file" in _one_line_error(bad[3], 2)
    assert "give --key-file too" in _one_line_error(bad[4], 2)
    _no_key_in(sealed.key, *bad)


def test_writes_seal_with_the_key_and_never_encrypt_a_plain_store(
    in_process: InProcess, sealed: Sealed, tmp_path: Path
) -> None:
    uri, files = sealed.copy(tmp_path / "copy.lance"), sealed.files
    restore = ["restore", uri, str(sealed.first), "--session", "a", "--yes"]
    refused = in_process(*restore)
    assert "no key was given" in _one_line_error(refused)
    assert in_process(*restore, "--key-file", files["wrong"]).code == 1
    done = in_process(*restore, env={KEY_FILE_ENV: files["hex"]})
    assert done.code == 0 and "restored session a" in done.out, done.err
    tagged = in_process("tag", uri, "restored", "--key-file", files["raw"])
    assert tagged.code == 0 and "tagged main@" in tagged.out
    reader = ContextStore.open(
        uri, read_only=True, embedder=None, encryption=EncryptionPolicy(key=sealed.key)
    )
    assert "restored" in reader.tags() and reader.records("a")[0].text == PIN
    with pytest.raises(EncryptionError):  # what the command wrote is sealed
        ContextStore.open(uri, read_only=True, embedder=None).records("a")
    exported = tmp_path / "a.jsonl"
    assert in_process("export", uri, str(exported), "-s", "a", "--key-file", files["base64"]).code == 0
    made = in_process("import", str(tmp_path / "new.lance"), str(exported), env={KEY_FILE_ENV: files["raw"]})
    assert made.code == 0, made.err
    with pytest.raises(EncryptionError):  # a new store made with a key is sealed with it
        ContextStore.open(str(tmp_path / "new.lance"), read_only=True, embedder=None).records("a")
    plain = str(tmp_path / "plain.lance")
    ContextStore.open(plain, embedder=HashingEmbedder(32)).add(ContextRecord.from_content("hi", run_id="p"))
    assert in_process("tag", plain, "v1", env={KEY_FILE_ENV: files["raw"]}).code == 0
    assert ContextStore.open(plain, read_only=True, embedder=None).records("p")[0].text == "hi"
    _no_key_in(sealed.key, refused, done, tagged, made)


def test_previous_key_files_read_versions_sealed_before_a_rotation(
    in_process: InProcess, sealed: Sealed, tmp_path: Path
) -> None:
    uri, old = sealed.copy(tmp_path / "rotated.lance"), sealed.files["raw"]
    new_key = os.urandom(24)
    new = tmp_path / "new.key"
    new.write_text(base64.b64encode(new_key).decode())
    ContextStore.open(uri, embedder=None, encryption=EncryptionPolicy(key=sealed.key)).rotate_key(
        EncryptionPolicy(key=new_key)
    )
    past = ["show", uri, "a", "--tag", "first", "--key-file", str(new)]
    latest, without_old, with_old, old_only = in_process.many(
        ["show", uri, "a", "--key-file", str(new)],
        past,
        [*past, "--previous-key-file", old],
        ["show", uri, "a", "--key-file", old],
    )
    assert latest.code == 0 and PIN in latest.out
    err = _one_line_error(without_old)
    assert "the key given does not open record" in err and "--previous-key-file" in err
    assert with_old.code == 0 and PIN in with_old.out
    assert "the key given does not open" in _one_line_error(old_only)
    by_env = in_process(*past, env={PREVIOUS_KEY_FILES_ENV: f"{sealed.files['wrong']}{os.pathsep}{old}"})
    assert by_env.code == 0 and PIN in by_env.out, by_env.err
    _no_key_in(sealed.key, latest, without_old, with_old, old_only, by_env)
    _no_key_in(new_key, latest, without_old, with_old, old_only, by_env)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_inspector_shows_a_conversation_with_the_key_and_says_how_without(sealed: Sealed) -> None:
    with_key = serve(sealed.uri, "--key-file", sealed.files["hex"])
    try:
        status, page = _get(f"{with_key.url}/session?run=a")
        assert status == 200 and PIN in page
        for form in _forms(sealed.key)[:3]:
            assert form not in page
    finally:
        with_key.stop()
    without = serve(sealed.uri)
    try:
        assert _get(f"{without.url}/timeline")[0] == 200  # the history shows without the key
        status, page = _get(f"{without.url}/session?run=a")
        assert status == 400 and PIN not in page
        assert "this store is encrypted and no key was given" in page
        assert "restart the inspector with its key: lance-context serve URI --key-file PATH" in page
    finally:
        without.stop()
