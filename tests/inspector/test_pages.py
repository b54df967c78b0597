"""Every page of the inspector in a real headless Chromium, on a store with every kind of session."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from lance_context import ContextRecord, ContextStore

from ..cli._stores import HOSTILE, LONG_RECORDS, LONG_SESSION, Built, build_store
from .conftest import Server, serve, shoot

pytestmark = pytest.mark.browser

TRIP = "langchain.history:trip"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_store(str(tmp_path_factory.mktemp("inspector") / "memory.lance"))


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[Server]:
    started = serve(built.uri, "--page-size", "10")
    yield started
    started.stop()


def _session_url(server: Server, run_id: str, **params: object) -> str:
    extra = "".join(f"&{k}={quote(str(v))}" for k, v in params.items())
    return f"{server.url}/session?run={quote(run_id)}{extra}"


def test_timeline_lists_versions_with_changes_branches_and_tags(
    page: Any, server: Server, built: Built
) -> None:
    page.goto(server.url + "/")
    assert page.url.endswith("/timeline")
    rows = page.locator("table.versions tbody tr")
    pages = -(-built.latest // 10)  # every version, 10 a page
    assert (
        rows.count() == 10 and f"page 1 of {pages} ({built.latest})" in page.locator("nav.pager").inner_text()
    )
    assert rows.first.locator("td").first.inner_text() == str(built.latest)
    page.locator("nav.pager a[rel=next]").click()
    assert rows.first.locator("td").first.inner_text() == str(built.latest - 10)
    shoot(page, "timeline")  # the page with a delete, a tag and several sessions
    deleted = page.locator(f"#v{built.deleted}")
    assert (
        "delete" in deleted.inner_text()
        and "\u22121" in deleted.inner_text()
        and "scratch" in deleted.inner_text()
    )
    assert "before-answer" in page.locator(f"#v{built.tagged}").inner_text()
    aside = page.locator("aside").inner_text()
    assert "what-if" in aside and f"from main@{built.tagged}" in aside and "hashing (32 d)" in aside
    assert page.locator("form[method=post]").count() == 0  # read-only by default
    page.locator("aside a", has_text="what-if").click()
    assert (
        page.locator("h1").inner_text().startswith("Timeline")
        and "branch what-if" in page.locator("h1").inner_text()
    )


def test_conversation_shows_the_image_and_folds_the_tool_call(
    page: Any, server: Server, built: Built
) -> None:
    page.goto(_session_url(server, TRIP))
    turns = page.locator(".conversation > article.turn")
    assert turns.count() == 4
    image = page.locator("figure.binary img")
    image.wait_for()
    assert page.evaluate(
        "(img) => [img.complete, img.naturalWidth, img.naturalHeight]", image.element_handle()
    ) == [True, 2, 2]
    assert "image/png 2x2" in page.locator("figure.binary figcaption").inner_text()
    tool = page.locator("details.tool")
    assert "weather" in tool.locator("> summary").inner_text()
    result = tool.locator(".tool-body > article.turn")
    assert not result.is_visible()  # folded under its call until opened
    tool.locator("> summary").click()
    assert result.is_visible() and "Kyoto: 18C, sakura in full bloom" in result.inner_text()
    answer = ContextStore.open(built.uri, read_only=True, embedder=None).records(TRIP, roles="tool")[0]
    assert page.locator(f"#r-{answer.id}").count() == 1  # a search hit on the tool's result lands on its call
    meta = page.locator("details.meta").first
    assert not meta.locator("pre").is_visible()
    meta.locator("summary").click()
    assert "langchain_message" in meta.locator("pre").inner_text()
    shoot(page, "conversation")


def test_conversation_as_of_a_version_and_on_a_branch(page: Any, server: Server, built: Built) -> None:
    page.goto(_session_url(server, TRIP, at="before-answer"))
    text = page.locator(".conversation").inner_text()
    assert "Lisbon" not in text and f"main@{built.tagged}" in page.locator("h1").inner_text()
    page.goto(_session_url(server, TRIP, branch="what-if"))
    assert "Try Patagonia in October." in page.locator(".conversation").inner_text()


def test_large_conversations_are_paginated(page: Any, server: Server) -> None:
    page.goto(_session_url(server, LONG_SESSION))
    assert page.locator("article.turn").count() == 50
    assert f"records 1\u201350 of {LONG_RECORDS}" in page.locator("nav.pager").first.inner_text()
    page.locator("nav.pager a[rel=next]").first.click()
    assert page.locator("article.turn").first.locator(".text").inner_text() == "long note 50"
    page.goto(_session_url(server, LONG_SESSION, page=3))
    assert page.locator("article.turn").count() == LONG_RECORDS - 100


def test_stored_script_and_onerror_do_not_run(page: Any, server: Server) -> None:
    page.goto(_session_url(server, "notes:hostile"))
    shown = page.locator("article.turn .text").inner_text()
    assert "<script>window.__pwned = 1</script>" in shown and 'onerror="window.__pwned = 2"' in shown
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator('img[src="x"]').count() == 0 and page.locator("main script").count() == 0
    with urllib.request.urlopen(_session_url(server, "notes:hostile")) as response:
        html = response.read().decode()
        policy = response.headers["content-security-policy"]
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html and "<script>window" not in html
    assert "default-src 'none'" in policy and "script-src" not in policy
    for path in ("/diff?a=before-answer", "/search?q=pwned&mode=text"):
        page.goto(server.url + path)
        assert HOSTILE[:20] in page.locator("main").inner_text()
        assert page.evaluate("() => window.__pwned") is None


def test_diff_shows_added_and_removed_records(page: Any, server: Server, built: Built) -> None:
    page.goto(f"{server.url}/diff?a={built.deleted - 1}&b={built.deleted}")
    removed = page.locator("ul.diff li.removed")
    assert removed.count() == 1 and "scratch that" in removed.inner_text()
    assert page.locator("ul.diff li.added").count() == 0
    page.goto(server.url + "/diff")
    page.fill("input[name=a]", "main")
    page.fill("input[name=b]", "what-if")
    page.click("form button")
    trip = page.locator("section.diff-session", has_text=TRIP)
    assert "Try Patagonia in October." in trip.locator("li.added").inner_text()
    assert "Lisbon" in trip.locator("li.removed").inner_text()
    assert f"main@{built.latest} → what-if@{built.tagged + 1}" in page.locator("p.summary").inner_text()
    shoot(page, "diff")


def test_search_finds_hits_and_places_them_in_their_conversation(
    page: Any, server: Server, built: Built
) -> None:
    page.goto(server.url + "/search")
    page.fill("input[name=q]", "cherry blossoms spring travel")
    page.select_option("select[name=mode]", "hybrid")
    page.click("form.search button")
    hits = page.locator("li.hit")
    assert hits.count() >= 2
    top = hits.first
    assert TRIP in top.inner_text() and "message" in top.inner_text() and "of 5" in top.inner_text()
    shoot(page, "search")
    link = top.locator("a").first
    target = link.get_attribute("href").split("#")[1]
    link.click()
    assert page.locator(f"article#{target}").is_visible()
    page.goto(f"{server.url}/search?q=Lisbon+mild+weather&mode=text&at=before-answer")
    assert "Lisbon" not in page.locator("main").inner_text().replace("Lisbon mild weather", "")
    page.goto(f"{server.url}/search?q=note&mode=text&session={quote(LONG_SESSION)}&k=3")
    assert page.locator("li.hit").count() == 3
    assert all(LONG_SESSION in hit for hit in page.locator("li.hit").all_inner_texts())
    page.goto(f"{server.url}/search?q=x&mode=sideways")
    assert "mode must be vector, text or hybrid" in page.locator("p.error").inner_text()


def test_sessions_page_names_kinds_and_filters_by_id(page: Any, server: Server) -> None:
    page.goto(server.url + "/sessions")
    table = page.locator("table.sessions").inner_text()
    for kind in ("LangChain chat history", "LangGraph thread", "LlamaIndex chat store key"):
        assert kind in table
    page.fill("input[name=q]", "notes")
    page.click("form button")
    assert page.locator("table.sessions tbody tr").count() == 3


def test_langgraph_thread_shows_checkpoints_newest_first_with_state(page: Any, server: Server) -> None:
    page.goto(server.url + "/threads")
    page.locator("a", has_text="support-7").click()
    checkpoints = page.locator("section.checkpoint")
    assert checkpoints.count() == 6
    steps = [h.split()[1] for h in checkpoints.locator("h2").all_inner_texts()]
    assert steps == ["4", "3", "2", "1", "0", "-1"]
    summaries = checkpoints.locator("details.state > summary").all_inner_texts()
    assert summaries[4].startswith("state: 1 message,") and summaries[0].startswith("state: 4 messages,")
    newest = checkpoints.first.locator("details.state")
    assert newest.get_attribute("open") is not None
    assert "still late" in newest.inner_text() and "answer 2" in newest.inner_text()
    channels = newest.locator("p.hint + pre")  # the state's channels other than messages, labelled
    assert newest.locator("p.hint").inner_text() == "other channels" and '"turns": 2' in channels.inner_text()
    shoot(page, "thread")
    page.goto(f"{server.url}/thread?id=support-7&at=before-answer")  # before the thread existed
    assert (
        page.locator("h1").inner_text() == "Not found"
        and "no LangGraph thread" in page.locator("main").inner_text()
    )


def test_binaries_and_unknown_hosts(server: Server, built: Built) -> None:
    store = ContextStore.open(built.uri, read_only=True, embedder=None)
    image = next(r for r in store.records(TRIP) if r.binary_payload)
    with urllib.request.urlopen(f"{server.url}/binary?record={image.id}") as response:
        assert response.headers["content-type"] == "image/png" and response.read() == image.binary_payload
    checkpoint = next(r for r in store.records("langgraph.checkpoints:support-7") if r.binary_payload)
    with urllib.request.urlopen(f"{server.url}/binary?record={checkpoint.id}") as response:
        assert response.headers["content-type"] == "application/octet-stream"
        assert "attachment" in response.headers["content-disposition"]
    foreign = urllib.request.Request(server.url + "/timeline", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(foreign)
    assert refused.value.code == 400


def test_read_only_by_default(server: Server, built: Built, tmp_path: Path) -> None:
    before = ContextStore.open(built.uri, read_only=True, embedder=None)
    post = urllib.request.Request(
        server.url + "/actions/tag", data=b"name=x&version=3&branch=main", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post)
    assert refused.value.code == 403 and b"read-only" in refused.value.read()
    after = ContextStore.open(built.uri, read_only=True, embedder=None)
    assert after.version() == before.version() == built.latest and after.tags() == before.tags()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_every_diff_link_of_a_branch_timeline_opens_and_notices_need_a_signature(
    page: Any, server: Server, built: Built
) -> None:
    page.goto(server.url + "/timeline?branch=what-if")
    links = [
        page.locator("a", has_text="diff").nth(i).get_attribute("href")
        for i in range(page.locator("a", has_text="diff").count())
    ]
    assert links  # the branch's own versions after its fork
    for href in links:
        assert _status(server.url + str(href)) == 200, href
    forged = server.url + "/timeline?done=Your+store+is+corrupted"
    page.goto(forged)
    assert page.locator(".notice").count() == 0  # only the inspector's own redirects show a notice
    assert _status(server.url + "/timeline?done=x&sig=%C3%A9") == 200  # a crafted signature is no error
    page.goto(server.url + f"/timeline?at={built.tagged}")
    assert (
        f"{ContextStore.open(built.uri, read_only=True, embedder=None).count()} records now"
        in page.locator("h1").inner_text()
    )
    missing = _status(server.url + "/timeline?branch=gone-branch")
    assert missing == 404


def test_very_long_session_ids_and_tags_wrap_inside_the_window(page: Any, tmp_path: Path) -> None:
    uri = str(tmp_path / "long.lance")
    store = ContextStore.open(uri, embedder=None)
    long_id = "customer-" + "x" * 180
    store.add(ContextRecord.from_content("hello", run_id=long_id))
    store.tag("t-" + "y" * 118)
    store.add(ContextRecord.from_content("hi", run_id="langgraph.checkpoints:support-7"))
    store.tag("before-answer")
    started = serve(uri)
    try:
        for path in ("/sessions", "/timeline"):
            page.goto(started.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, (path, width)
        shoot(page, "timeline-long-names")
        assert (
            page.locator("td.tags .tag", has_text="before-answer").bounding_box()["height"] < 30
        )  # one line
    finally:
        started.stop()


def test_a_tool_call_and_its_result_stay_together_across_a_page_boundary(page: Any, tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from lance_context.langchain import LanceChatMessageHistory

    uri = str(tmp_path / "paged.lance")
    history = LanceChatMessageHistory("paged", store=ContextStore.open(uri, embedder=None))
    history.add_messages([HumanMessage(f"message {i}") for i in range(49)])  # records 1-49
    call = {"name": "weather", "args": {"city": "Kyoto"}, "id": "c1"}
    history.add_messages([AIMessage("", tool_calls=[call]), ToolMessage("18C and sunny", tool_call_id="c1")])
    history.add_messages([HumanMessage("thanks")])
    started = serve(uri)
    try:
        page.goto(started.url + "/session?run=langchain.history:paged")
        tool = page.locator("details.tool")
        assert tool.count() == 1 and "18C and sunny" in str(tool.locator(".tool-body").text_content())
        page.goto(started.url + "/session?run=langchain.history:paged&page=2")
        shown = page.locator(".conversation").inner_text()
        assert "thanks" in shown and "18C and sunny" not in shown  # not repeated on the next page
    finally:
        started.stop()


def test_every_timeline_row_shows_its_diff_link_inside_the_window(page: Any, server: Server) -> None:
    for number in (1, 2):
        page.goto(server.url + f"/timeline?page={number}")
        links = page.locator("td.actions a", has_text="diff")
        assert links.count() >= 9
        section = page.locator("section.main").bounding_box()
        assert section is not None
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert (
                box is not None and box["x"] + box["width"] <= section["x"] + section["width"]
            )  # not scrolled away
