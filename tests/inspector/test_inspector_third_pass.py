"""A third pass over the inspector as a person uses it, in a real Chromium and over plain HTTP.

At 800 px a timeline with tags keeps its diff links in view; the top navigation keeps the
version and branch a page shows; a bad ``k`` or a version written with other digits gets
a clear 400; a wrong method on a page names the page; the LangGraph threads page is paginated
(and lists what LangGraph's own ``list`` lists); write forms' fields have labels.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest

from lance_context import ContextRecord, ContextStore

from ..cli._stores import Built, build_store
from .conftest import Server, serve, shoot

pytestmark = pytest.mark.browser

TRIP = "langchain.history:trip"
THREADS = 11  # with support-7, 12 threads: two pages of 10 with --page-size 5
LONG_TAG = "release-" + "x" * 40
HOSTILE_ID = 'x"><img src=x onerror="window.__pwned = 1">'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    from langgraph.checkpoint.base import empty_checkpoint

    from lance_context.langgraph import LanceCheckpointSaver

    built = build_store(str(tmp_path_factory.mktemp("third") / "memory.lance"))
    store = ContextStore.open(built.uri, embedder=None)
    saver = LanceCheckpointSaver(store=store)
    for i in range(THREADS):
        config: Any = {"configurable": {"thread_id": f"ticket-{i:02d}", "checkpoint_ns": ""}}
        saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
    store.add(ContextRecord.from_content("hello", run_id=HOSTILE_ID))
    store.tag(LONG_TAG)
    return built


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[Server]:
    started = serve(built.uri, "--page-size", "5")
    yield started
    started.stop()


def _call(url: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read().decode()


def _newest_first(uri: str) -> list[int]:
    return [v.version for v in reversed(ContextStore.open(uri, read_only=True, embedder=None).versions())]


def test_at_800_px_a_timeline_with_tags_keeps_every_diff_link_in_view(
    page: Any, server: Server, built: Built
) -> None:
    page.set_viewport_size({"width": 800, "height": 800})
    listed = _newest_first(built.uri)
    for number in sorted({1, listed.index(built.tagged) // 5 + 1}):  # the long tag's page, before-answer's
        page.goto(f"{server.url}/timeline?page={number}")
        assert page.locator("td.tags .tag").count() >= 1
        section = page.locator("section.main")
        assert page.evaluate("(s) => s.scrollWidth <= s.clientWidth", section.element_handle())
        right = section.bounding_box()["x"] + section.bounding_box()["width"]
        links = page.locator("td.actions a", has_text="diff")
        assert links.count() >= 1
        for link in links.all():
            box = link.bounding_box()
            assert box["x"] + box["width"] <= right  # not scrolled out of sight
        stamp = page.locator("td.when time").first  # the date and the time each on one line
        first, second = (s.bounding_box() for s in stamp.locator("span").all())
        assert first["height"] < 24 and second["height"] < 24
    shoot(page, "third-timeline-800")


def test_top_navigation_keeps_the_version_and_branch_shown(page: Any, server: Server, built: Built) -> None:
    page.goto(f"{server.url}/sessions?at=before-answer")
    pinned = f"main@{built.tagged}"
    for name, heading in (
        ("Search", "Search"),
        ("LangGraph threads", "LangGraph threads"),
        ("Sessions", "Sessions"),
    ):
        page.locator("header.top nav a", has_text=name).click()
        assert page.locator("h1").inner_text().startswith(heading)
        assert (
            pinned in page.locator("h1 small").inner_text()
            and "latest" not in page.locator("h1").inner_text()
        )
    page.locator("table.sessions a", has_text=TRIP).click()
    assert "Lisbon" not in page.locator(".conversation").inner_text()  # as it was when tagged
    page.goto(f"{server.url}/session?run={quote(TRIP)}&at=what-if")  # a branch's latest version
    page.locator("header.top nav a", has_text="Sessions").click()
    assert page.locator("h1 small").inner_text().startswith("what-if@")
    assert "(latest)" in page.locator("h1 small").inner_text()
    page.goto(server.url + "/sessions")  # the latest version: links to the latest, not pinned
    hrefs = page.locator("header.top nav a").evaluate_all("(links) => links.map((a) => a.href)")
    assert not any("at=" in href for href in hrefs)
    page.goto(server.url + "/sessions?at=999")  # an error page does not spread a bad version
    hrefs = page.locator("header.top nav a").evaluate_all("(links) => links.map((a) => a.href)")
    assert not any("at=" in href for href in hrefs)


def test_search_refuses_a_bad_k_with_a_clear_message(page: Any, server: Server) -> None:
    page.goto(server.url + "/search")
    page.fill("input[name=q]", "Kyoto")
    page.fill("input[name=k]", "lots")
    page.click("form.search button")
    assert (
        page.locator("p.error").inner_text()
        == "k (how many hits) must be a whole number from 1 to 100, not 'lots'"
    )
    assert page.locator("input[name=k]").input_value() == "lots" and page.locator("li.hit").count() == 0
    for bad in ("0", "101", "-3", "%C2%B2"):
        status, _, html = _call(f"{server.url}/search?q=Kyoto&mode=text&k={bad}")
        assert status == 400 and "must be a whole number from 1 to 100" in html, bad
    status, _, html = _call(f"{server.url}/search?q=Kyoto&mode=text&k=100")
    assert status == 200 and 'class="hit"' in html


def test_a_version_written_with_other_digits_is_refused_clearly(server: Server) -> None:
    for path in (
        "/sessions?at=%C2%B2",
        "/sessions?at=what-if@%C2%B2",
        "/diff?a=%C2%B2",
        f"/session?run={quote(TRIP)}&at=%EF%BC%93",
    ):
        status, _, html = _call(server.url + path)
        assert status == 400 and "not a version number" in html and "invalid literal" not in html, path


def test_wrong_methods_and_errors_speak_of_the_inspector(server: Server) -> None:
    status, headers, html = _call(server.url + "/timeline", "POST")
    assert status == 405 and "GET" in headers["allow"] and "POST" not in headers["allow"]
    assert "/timeline is a page to read" in html and "tag, branch and restore" not in html
    status, _, html = _call(server.url + "/sessions", "DELETE")
    assert status == 405 and "/sessions is a page to read" in html
    status, _, html = _call(server.url + "/actions/tag", "PUT")  # a write is still explained as one
    assert status == 405 and "sends with POST" in html
    status, _, html = _call(server.url + "/timeline", "HEAD")
    assert status == 200 and html == ""
    status, _, html = _call(server.url + "/diff?a=1&b=gone@3")
    assert status == 404 and "the timeline lists them" in html and "lance-context branch" not in html
    for path in ("/static/..%2f_app.py", "/static/%2e%2e/_pages.py", "/binary?record=..%2F..%2Fetc%2Fpasswd"):
        status, _, html = _call(server.url + path)
        assert status == 404 and "import" not in html, path


def test_the_threads_page_is_paginated_and_lists_what_langgraph_lists(
    page: Any, server: Server, built: Built
) -> None:
    from lance_context.langgraph import LanceCheckpointSaver

    saver = LanceCheckpointSaver(store=ContextStore.open(built.uri, read_only=True, embedder=None))
    expected = {t.config["configurable"]["thread_id"] for t in saver.list(None)}  # LangGraph's own listing
    page.goto(server.url + "/threads")
    rows = page.locator("table.threads tbody tr")
    assert rows.count() == 10 and "page 1 of 2 (12)" in page.locator("nav.pager").first.inner_text()
    shown = set(page.locator("table.threads tbody a").all_inner_texts())
    page.locator("nav.pager a[rel=next]").first.click()
    assert rows.count() == 2
    shown |= set(page.locator("table.threads tbody a").all_inner_texts())
    assert shown == expected and len(expected) == THREADS + 1


class _Fields(HTMLParser):
    """The form fields a user types into or picks from, and whether each has a label."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = 0
        self.unlabelled: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label":
            self.labels += 1
        elif (
            tag in ("input", "select")
            and found.get("type") != "hidden"
            and not found.get("aria-label")
            and not self.labels
        ):
            self.unlabelled.append(str(found.get("name")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.labels -= 1


def test_every_field_has_a_label_and_every_page_a_title(page: Any, server: Server, built: Built) -> None:
    from starlette.testclient import TestClient

    from lance_context._cli._refs import StoreSpec
    from lance_context._inspector import InspectorConfig, create_app

    app = create_app(InspectorConfig(StoreSpec(built.uri), allow_writes=True, page_size=5))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        html = client.get("/timeline").text
    fields = _Fields()
    fields.feed(html)
    assert 'name="name"' in html and fields.unlabelled == []  # the tag and branch names of the write panel
    for path, title in (
        ("/timeline", "Timeline of main"),
        ("/sessions", "Sessions"),
        ("/search?q=Kyoto", "Search"),
        ("/diff?a=before-answer", "Diff"),
        ("/threads", "LangGraph threads"),
        (f"/session?run={quote(TRIP)}", TRIP),
        (f"/session?run={quote(HOSTILE_ID)}", HOSTILE_ID),
    ):
        page.goto(server.url + path)
        assert page.title() == f"{title} · lance-context", path
        fields = _Fields()
        fields.feed(page.content())
        assert fields.unlabelled == [], path
        assert page.locator("img:not([alt])").count() == 0
    assert page.evaluate("() => window.__pwned") is None and page.locator("main img").count() == 0
    page.locator("input[name=at]").fill(str(_newest_first(built.uri)[0]))  # the id comes back as stored
    page.locator("form.inline button").click()
    assert (
        page.locator("h1").inner_text().startswith(HOSTILE_ID) and page.locator("article.turn").count() == 1
    )
