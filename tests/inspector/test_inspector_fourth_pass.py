"""A fourth pass over the inspector: bad versions on Search, a half-filled diff, error pages, the icon.

Search with a bad "as of" keeps its form and says why (404, as every page answers a bad
version); a diff given only "to" asks for "from"; an error page links back to the branch
the request named when the store has it, and never carries a bad name on; the icon that
Chromium asks for by itself is served. Plain HTTP where that suffices, Chromium for the icon.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from ..cli._stores import Built, build_store
from .conftest import Server, serve

pytestmark = pytest.mark.browser

HOSTILE_BRANCH = '"><script>window.__pwned = 1</script>'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_store(str(tmp_path_factory.mktemp("fourth") / "memory.lance"))


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[Server]:
    started = serve(built.uri)
    yield started
    started.stop()


def _call(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read()


class _Page(HTMLParser):
    """What a test reads of a page: links, form fields, error paragraphs, icons, hits."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: dict[str, str] = {}  # link text -> href
        self.nav: list[str] = []
        self.fields: dict[str, str] = {}
        self.errors: list[str] = []
        self.icons: list[str] = []
        self.forms: list[str] = []
        self.hits = 0
        self._href: str | None = None
        self._text = ""
        self._in_nav = False
        self._in_error = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "nav":
            self._in_nav = True
        elif tag == "a":
            self._href, self._text = found.get("href", ""), ""
            if self._in_nav:
                self.nav.append(self._href)
        elif tag == "input" and "name" in found:
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "p" and "error" in found.get("class", "").split():
            self._in_error = True
            self.errors.append("")
        elif tag == "link" and found.get("rel") == "icon":
            self.icons.append(found.get("href", ""))
        elif tag == "form":
            self.forms.append(found.get("action", ""))
        elif tag == "li" and "hit" in found.get("class", "").split():
            self.hits += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False
        elif tag == "a" and self._href is not None:
            self.links[self._text.strip()] = self._href
            self._href = None
        elif tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data
        if self._in_error:
            self.errors[-1] += data


def _page(server: Server, path: str) -> tuple[int, _Page]:
    status, _, body = _call(server.url + path)
    return status, _Page(body.decode())


def test_search_with_a_bad_as_of_keeps_the_form_and_says_why(server: Server) -> None:
    for bad, says in (
        ("999999", "version 999999 of branch 'main' does not exist"),
        ("nosuchtag", "no version, tag or branch named 'nosuchtag'"),
    ):
        status, page = _page(server, "/search?" + urlencode({"q": "Kyoto", "mode": "text", "at": bad}))
        assert status == 404, bad
        assert page.forms == ["/search"] and len(page.errors) == 1 and says in page.errors[0], bad
        assert page.fields["at"] == bad and page.fields["q"] == "Kyoto"  # what was typed, to correct it
        assert page.hits == 0  # nothing is searched at another version than the one asked for
        assert not any("at=" in href for href in page.nav)
        assert _call(server.url + f"/sessions?at={bad}")[0] == status  # as the other pages answer
    status, page = _page(server, "/search?branch=what-if&at=999999")
    assert status == 404 and "of branch 'what-if'" in page.errors[0] and page.fields["branch"] == "what-if"
    status, page = _page(server, "/search?at=%C2%B2")  # a refused version: 400, as on the other pages
    assert status == 400 and page.forms == ["/search"] and "not a version number" in page.errors[0]
    status, page = _page(server, "/search?branch=nosuch&at=3")  # no such branch: no form to show
    assert status == 404 and page.forms == [] and page.errors == ["no branch named 'nosuch'"]
    status, page = _page(server, "/search?q=Kyoto&mode=text&at=before-answer")  # a good version still works
    assert status == 200 and page.errors == [] and page.fields["at"].isdigit() and page.hits > 0


def test_a_diff_given_only_to_asks_for_from(server: Server, built: Built) -> None:
    status, page = _page(server, f"/diff?b={built.tagged}")
    assert status == 400 and page.forms == ["/diff"]
    assert len(page.errors) == 1 and 'fill in "from"' in page.errors[0]
    assert page.fields["b"] == str(built.tagged) and page.fields["a"] == ""
    status, page = _page(server, "/diff")  # the empty form is not an error
    assert status == 200 and page.errors == []
    status, _, body = _call(server.url + f"/diff?a={built.tagged}")  # "to" left out: the latest
    assert status == 200 and _Page(body.decode()).errors == [] and b"No records differ." not in body


def test_an_error_page_links_back_to_the_branch_asked_for_only_when_it_exists(server: Server) -> None:
    status, page = _page(server, "/sessions?branch=what-if&at=999999")
    assert status == 404 and page.links["Back to the timeline"] == "/timeline?branch=what-if"
    assert "/timeline?branch=what-if" in page.nav
    status, page = _page(server, f"/session?branch=what-if&run={quote('nobody')}")
    assert status == 404 and page.links["Back to the timeline"] == "/timeline?branch=what-if"
    for bad in ("nosuch", HOSTILE_BRANCH):
        status, _, body = _call(server.url + "/sessions?" + urlencode({"branch": bad}))
        html = body.decode()
        page = _Page(html)
        assert status == 404 and page.links["Back to the timeline"] == "/timeline", bad
        assert not any("branch=" in href for href in page.nav), bad  # a bad name is not carried on
        assert "<script>window.__pwned" not in html
    status, page = _page(server, "/sessions?branch=main&at=999999")  # the default branch: the plain link
    assert status == 404 and page.links["Back to the timeline"] == "/timeline"
    status, page = _page(server, "/no-such-page?branch=what-if")  # Starlette's own 404 keeps it too
    assert status == 404 and page.links["Back to the timeline"] == "/timeline?branch=what-if"


def test_the_icon_is_served_where_pages_and_browsers_ask_for_it(server: Server, page: Any) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        status, headers, body = _call(server.url + path)
        assert status == 200 and headers["content-type"].startswith("image/svg+xml"), path
        assert body.lstrip().startswith(b"<svg") and headers["x-content-type-options"] == "nosniff"
    for path in ("/timeline", "/search?at=999999", "/no-such-page"):
        assert _page(server, path)[1].icons == ["/static/favicon.svg"], path
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    with page.expect_response(lambda r: "favicon" in r.url) as icon:
        page.goto(server.url + "/timeline")
    assert icon.value.status == 200
    page.goto(server.url + "/sessions")
    assert failed == []
