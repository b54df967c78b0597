"""--allow-writes: tag, branch and restore buttons, each a POST that must carry the CSRF token."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from .conftest import Server, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("writes") / "memory.lance")
    store = ContextStore.open(path, embedder=HashingEmbedder(8))
    for text in ("first note", "second note", "third note"):
        store.add(ContextRecord.from_content(text, run_id="notes"))
    return path


@pytest.fixture(scope="module")
def server(uri: str) -> Iterator[Server]:
    started = serve(uri, "--allow-writes")
    yield started
    started.stop()


def _store(uri: str) -> ContextStore:
    return ContextStore.open(uri, read_only=True, embedder=None)


def _post(server: Server, path: str, body: str, **headers: str) -> int:
    request = urllib.request.Request(server.url + path, data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_posts_without_the_csrf_token_are_refused(page: Any, server: Server, uri: str) -> None:
    page.goto(server.url + "/timeline")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token and len(token) >= 32
    version = _store(uri).version()
    body = f"branch=main&version={version}&name=forged"
    assert _post(server, "/actions/tag", body) == 403
    assert _post(server, "/actions/tag", body + "&csrf=" + "x" * len(token)) == 403
    assert _post(server, "/actions/tag", f"{body}&csrf={token}", Origin="http://evil.example") == 403
    assert _post(server, "/actions/restore", f"branch=main&version=3&csrf={'y' * 40}") == 403
    assert _post(server, "/actions/tag", body + "&csrf=%C3%A9") == 403  # not even ASCII
    assert "forged" not in _store(uri).tags() and _store(uri).version() == version


def test_tag_branch_and_restore_from_the_timeline(
    page: Any, server: Server, uri: str, tmp_path: Path
) -> None:
    latest = _store(uri).version()
    older = latest - 1
    page.goto(server.url + "/timeline")
    assert "read and write" in page.locator(".mode").inner_text()
    row = page.locator(f"#v{older}")
    row.locator("details.write > summary").click()
    row.locator("form[action='/actions/tag'] input[name=name]").fill("two-notes")
    row.locator("form[action='/actions/tag'] button").click()
    assert page.locator(".notice").inner_text() == f"tagged main@{older} as two-notes"
    assert _store(uri).tags() == {"two-notes": older}
    assert "two-notes" in page.locator(f"#v{older}").inner_text()
    shoot(page, "timeline-writes")

    row = page.locator(f"#v{older}")
    row.locator("details.write > summary").click()
    row.locator("form[action='/actions/branch'] input[name=name]").fill("experiment")
    row.locator("form[action='/actions/branch'] button").click()
    assert re.search(r"created branch experiment from main@\d+", page.locator(".notice").inner_text())
    assert "branch experiment" in page.locator("h1").inner_text()
    assert ContextStore.open(uri, read_only=True, embedder=None, branch="experiment").count() == 2
    ContextStore.open(uri, embedder=None).delete_branch("experiment")  # deleted while the inspector runs
    gone = page.goto(server.url + "/timeline?branch=experiment")
    assert gone is not None and gone.status == 404 and "no branch named 'experiment'" in page.content()

    page.goto(server.url + "/timeline")
    row = page.locator(f"#v{older}")
    row.locator("details.write > summary").click()
    row.locator("form[action='/actions/restore'] button").click()
    assert page.locator(".notice").inner_text() == f"restored main@{older} as version {latest + 1}"
    store = _store(uri)
    assert store.version() == latest + 1 and store.count() == 2


@pytest.mark.parametrize(("action", "name"), [("tag", "12"), ("branch", "2024"), ("tag", "main")])
def test_names_the_pages_could_not_tell_from_a_version_or_main_are_refused(
    page: Any, server: Server, uri: str, action: str, name: str
) -> None:
    """``?version=12`` reads 12 as a version, so a tag "12" could never be opened by name."""
    page.goto(server.url + "/timeline")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    before = _store(uri)
    request = urllib.request.Request(
        f"{server.url}/actions/{action}",
        data=f"branch=main&version={before.version()}&name={name}&csrf={token}".encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    message = refused.value.read().decode()
    assert ("would read as version" if name.isdigit() else "could not be told from it") in message
    after = _store(uri)
    assert (after.version(), after.tags(), after.branches()) == (
        before.version(),
        before.tags(),
        before.branches(),
    )
