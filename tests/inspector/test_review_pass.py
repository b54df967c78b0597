"""What a reviewer found by using the inspector on a bigger store, pinned in a real Chromium.

The store has no embedder (text search only), a long conversation, many sessions, a
large image, an Arrow table record and a session id that looks like HTML; the server
runs with ``--allow-writes`` and small pages.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import PIL.Image
import pyarrow as pa
import pytest

from lance_context import ContextRecord, ContextStore

from .conftest import Server, serve, shoot

pytestmark = pytest.mark.browser

LONG = "chat:long"
LONG_RECORDS = 260  # 6 pages of 50
SESSIONS = 30  # 3 pages of 10 with --page-size 5
HTML_ID = '<b>bold</b> & "quoted"'


def _photo() -> PIL.Image.Image:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (640, 400), color="orange").save(buffer, format="PNG")
    return PIL.Image.open(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("review") / "memory.lance")
    store = ContextStore.open(path, embedder=None)
    store.add([ContextRecord.from_content(f"hello {i}", run_id=f"user-{i:02d}") for i in range(SESSIONS - 4)])
    store.add(
        [
            ContextRecord.from_content(f"turn {i}", role="user" if i % 2 == 0 else "assistant", run_id=LONG)
            for i in range(LONG_RECORDS)
        ]
    )
    store.add(
        [
            ContextRecord.from_content(_photo(), run_id="media", text="an orange rectangle"),
            ContextRecord.from_content(
                pa.table({"city": ["Kyoto", "Lisbon"], "temp": [18, 21]}), role="tool", run_id="media"
            ),
            ContextRecord.from_content("<script>alert(1)</script>", run_id=HTML_ID),
        ]
    )
    store.tag("before-review")  # a tags column as wide as a real timeline's
    store.add(ContextRecord.from_content("{}", run_id="langgraph.checkpoints:support-7"))
    return path


@pytest.fixture(scope="module")
def server(uri: str) -> Iterator[Server]:
    started = serve(uri, "--allow-writes", "--page-size", "5")
    yield started
    started.stop()


def _get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status), dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read().decode()


def test_unknown_addresses_and_wrong_methods_get_an_inspector_page(server: Server) -> None:
    status, headers, html = _get(server.url + "/sesions")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in html and "no page at /sesions" in html and 'href="/timeline' in html
    status, headers, html = _get(server.url + "/actions/tag")  # a write is never a GET
    assert status == 405 and headers["allow"] == "POST" and "sends with POST" in html


def test_a_store_without_vectors_searches_by_text_by_default(page: Any, server: Server) -> None:
    page.goto(server.url + "/search")
    assert page.locator("select[name=mode]").input_value() == "text"
    page.fill("input[name=q]", "hello")
    page.click("form.search button")
    assert page.locator("li.hit").count() > 0 and page.locator("p.error").count() == 0
    status, _, html = _get(server.url + "/search?q=hello&mode=vector")
    assert status == 400 and "only text search works here" in html and "reembed(" not in html
    status, _, html = _get(server.url + "/search?q=hello&mode=text&session=nobody")
    assert status == 400 and "the Sessions page lists them" in html and "lance-context sessions" not in html


def test_long_lists_jump_to_their_first_and_last_pages(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/session?run={quote(LONG)}")
    assert page.locator("article.turn").count() == 50
    page.locator("nav.pager a[rel=last]").first.click()
    assert (
        f"records 251\u2013{LONG_RECORDS} of {LONG_RECORDS}" in page.locator("nav.pager").first.inner_text()
    )
    assert page.locator("article.turn").last.locator(".text").inner_text() == f"turn {LONG_RECORDS - 1}"
    assert page.locator("nav.pager a[rel=last]").count() == 0
    page.locator("nav.pager a[rel=first]").first.click()
    assert page.locator("article.turn").first.locator(".text").inner_text() == "turn 0"
    page.goto(server.url + "/sessions")
    pager = page.locator("nav.pager").first  # above the table as well as below it
    assert pager.bounding_box()["y"] < page.locator("table.sessions").bounding_box()["y"]
    pager.locator("a[rel=last]").click()
    assert "page 3 of 3" in page.locator("nav.pager").first.inner_text()


def test_every_write_panel_opens_inside_the_window(page: Any, server: Server) -> None:
    page.goto(server.url + "/timeline")
    section = page.locator("section.main")
    assert page.evaluate("(s) => s.scrollWidth <= s.clientWidth", section.element_handle())
    right = section.bounding_box()["x"] + section.bounding_box()["width"]
    for summary in page.locator("details.write > summary").all():
        box = summary.bounding_box()
        assert box["x"] + box["width"] <= right  # "restore" is not cut off
    oldest = page.locator("table.versions tbody tr").last  # its panel reaches below the table
    oldest.locator("details.write > summary").click()
    field = oldest.locator("form[action='/actions/tag'] input[name=name]")
    box = field.bounding_box()
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.getAttribute('placeholder')",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hit == "tag name"  # shown, not clipped by the scrolling section
    assert page.locator("h1").bounding_box()["x"] >= section.bounding_box()["x"]  # nothing scrolled sideways
    shoot(page, "review-timeline-write-panel")


def test_a_refused_write_says_nothing_changed(page: Any, server: Server, uri: str) -> None:
    page.goto(server.url + "/timeline")
    row = page.locator("table.versions tbody tr").first
    row.locator("details.write > summary").click()
    row.locator("form[action='/actions/tag'] input[name=name]").fill("first")
    row.locator("form[action='/actions/tag'] button").click()
    assert page.locator(".notice").inner_text().startswith("tagged main@")
    row = page.locator("table.versions tbody tr").first
    row.locator("details.write > summary").click()
    row.locator("form[action='/actions/tag'] input[name=name]").fill("first")
    row.locator("form[action='/actions/tag'] button").click()
    assert page.locator("h1").inner_text() == "Nothing changed"
    assert "a tag named 'first' already exists" in page.locator("p.error").inner_text()
    assert set(ContextStore.open(uri, read_only=True, embedder=None).tags()) == {"first", "before-review"}


def test_images_show_large_and_tables_as_tables(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/session?run=media")
    image = page.locator("figure.binary img")
    image.wait_for()
    box = image.bounding_box()
    assert box["width"] >= 400 and abs(box["width"] / box["height"] - 1.6) < 0.05  # not a 96 px square
    link = page.locator("figure.binary a")
    assert link.get_attribute("href") == image.get_attribute("src")  # a click opens it whole
    table = page.locator("figure.table-preview table")
    assert table.locator("th").all_inner_texts() == ["city", "temp"]
    assert table.locator("tbody tr").first.locator("td").all_inner_texts() == ["Kyoto", "18"]
    assert "2 rows \u00d7 2 columns" in page.locator("figure.table-preview figcaption").inner_text()
    download = page.locator("figure.table-preview a").get_attribute("href")
    with urllib.request.urlopen(server.url + str(download)) as response:
        assert 'filename="payload.arrows"' in response.headers["content-disposition"]
    shoot(page, "review-media")


def test_many_sessions_and_html_in_ids_read_as_text(page: Any, server: Server, uri: str) -> None:
    newest_first = [
        v.version for v in reversed(ContextStore.open(uri, read_only=True, embedder=None).versions())
    ]
    page.goto(f"{server.url}/timeline?page={newest_first.index(2) // 5 + 1}")
    assert page.locator("#v2 td.sessions").inner_text().endswith("user-02 and 23 more")  # 26 in one write
    page.goto(f"{server.url}/sessions?q={quote('bold')}")
    assert page.locator("table.sessions tbody a").inner_text() == HTML_ID
    page.locator("table.sessions tbody a").click()
    assert page.locator("h1").inner_text().startswith(HTML_ID)
    assert page.locator("article.turn .text").inner_text() == "<script>alert(1)</script>"
    assert page.locator("main b, main script").count() == 0
