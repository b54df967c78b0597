"""A second pass over the inspector with hostile and awkward stored values, in a real Chromium.

Bidi controls in a session id or a message ("Trojan Source") are shown, not obeyed; very
long thread ids and ids in error messages wrap inside the window; at 800 px the timeline's
aside goes below its table and the write links stay inside the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from lance_context import ContextRecord, ContextStore

from .conftest import Server, serve, shoot

pytestmark = pytest.mark.browser

#: Reads "safeexe.jpg" when the override is obeyed.
SPOOF = "safe\u202egpj.exe\u202c"
LONG_THREAD = "t" * 300


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("second") / "memory.lance")
    store = ContextStore.open(path, embedder=None)
    store.add(ContextRecord.from_content(f"open {SPOOF} now", run_id=SPOOF))
    for i in range(4):
        store.add(ContextRecord.from_content("{}", role="checkpoint", run_id=f"chat:{i}"))
    store.add(ContextRecord.from_content("{}", run_id="langgraph.checkpoints:" + LONG_THREAD))
    store.add(ContextRecord.from_content("hi", run_id="customer-" + "x" * 180))
    return path


@pytest.fixture(scope="module")
def server(uri: str) -> Iterator[Server]:
    started = serve(uri, "--allow-writes")
    yield started
    started.stop()


def _width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_bidi_controls_are_shown_not_obeyed_and_the_form_keeps_the_id(
    page: Any, server: Server, uri: str
) -> None:
    page.goto(f"{server.url}/session?run={quote(SPOOF)}")
    heading, text = page.locator("h1").inner_text(), page.locator("article.turn .text").inner_text()
    assert heading.startswith("safe[U+202E]gpj.exe[U+202C]") and "\u202e" not in heading
    assert text == "open safe[U+202E]gpj.exe[U+202C] now" and "\u202e" not in page.title()
    page.goto(f"{server.url}/sessions")
    assert "safe[U+202E]gpj.exe" in page.locator("table.sessions").inner_text()
    page.locator("table.sessions a", has_text="[U+202E]").click()
    first = ContextStore.open(uri, read_only=True, embedder=None).versions()[1].version  # the spoof's
    page.locator("input[name=at]").fill(str(first))  # the "as of" form sends the id as stored
    page.locator("form.inline button").click()
    assert page.locator("article.turn").count() == 1 and f"main@{first}" in page.locator("h1").inner_text()


def test_long_thread_ids_and_ids_in_errors_wrap_inside_the_window(page: Any, server: Server) -> None:
    for path in (
        "/threads",
        f"/thread?id={LONG_THREAD}",
        f"/session?run={'z' * 400}",  # "no session 'zzz…'" on the error page
    ):
        page.goto(server.url + path)
        assert _width(page) <= 1280, (path, _width(page))


def test_at_800_px_the_aside_goes_below_and_write_links_stay_inside(page: Any, server: Server) -> None:
    page.set_viewport_size({"width": 800, "height": 800})
    page.goto(server.url + "/timeline")
    shoot(page, "timeline-800")
    assert _width(page) <= 800
    table, aside = page.locator("table.versions").bounding_box(), page.locator("aside").bounding_box()
    assert aside["y"] >= table["y"] + table["height"]  # below the table, not squeezing it
    section = page.locator("section.main").bounding_box()
    for summary in page.locator("details.write > summary").all():
        box = summary.bounding_box()
        assert box["x"] + box["width"] <= section["x"] + section["width"]  # "restore" is not cut off
    page.goto(server.url + "/sessions")
    assert _width(page) <= 800
    chip = page.locator("td.roles .chip").first.bounding_box()
    assert chip["height"] < 24  # "checkpoint 1" on one line
    stamp = page.locator("table.sessions td time").first
    assert stamp.locator("span").first.inner_text() == stamp.inner_text()[:10]  # the date never splits
    first, second = (s.bounding_box() for s in stamp.locator("span").all())
    assert first["height"] < 24 and second["height"] < 24


def test_an_unexpected_error_page_carries_the_security_headers(uri: str) -> None:
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from lance_context._cli._refs import StoreSpec
    from lance_context._inspector import InspectorConfig, create_app

    def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    app = create_app(InspectorConfig(StoreSpec(uri)))
    app.router.routes.append(Route("/broken", broken))
    client = TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1")
    response = client.get("/broken")  # the 500 page is sent from outside the inspector's middleware
    assert response.status_code == 500 and "a bug" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
