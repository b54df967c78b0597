"""info, sessions, log, show, diff and search: what a user reads, in text and in --json."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import lance

from lance_context import ContextRecord, ContextStore

from ._stores import HOSTILE, LONG_RECORDS, LONG_SESSION, Built
from .conftest import InProcess, cli_env, run_cli, run_many, snapshot

TRIP = "langchain.history:trip"
THREAD = "langgraph.checkpoints:support-7"


def test_help_lists_every_command_and_the_console_script_is_declared() -> None:
    # a real subprocess: `python -m lance_context._cli`, and with no arguments at all
    result = run_cli("--help")
    assert result.code == 0
    for command in (
        "info",
        "sessions",
        "log",
        "show",
        "diff",
        "search",
        "tag",
        "branch",
        "restore",
        "compact",
        "cleanup",
        "reembed",
        "export",
        "import",
        "serve",
    ):
        assert f"  {command} " in result.out
    bare = run_cli()
    assert bare.code == 0 and bare.out.startswith("Usage: lance-context")
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert 'lance-context = "lance_context._cli:main"' in pyproject


def test_the_installed_console_script_runs() -> None:
    script = Path(sys.executable).with_name("lance-context")
    assert script.exists(), "the lance-context console script is not installed (make install installs it)"
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, env=cli_env(), check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("lance-context ")


def test_info_counts_the_store(in_process: InProcess, built: Built) -> None:
    result, text_result, tagged, on_branch = in_process.many(
        ["info", built.uri, "--json"],
        ["info", built.uri],
        ["info", built.uri, "--tag", "before-answer", "--json"],
        ["info", built.uri, "--branch", "what-if", "--json"],
    )
    data = result.json()
    assert on_branch.json()["disk_bytes"] == data["disk_bytes"]  # the whole store's files, from any branch
    store = ContextStore.open(built.uri, read_only=True, embedder=None)
    assert data["records"] == store.count() and data["version"] == built.latest and data["latest"]
    assert data["sessions"] == len(store.run_ids()) == 6
    assert data["session_kinds"] == {
        "LangChain chat history": 1,
        "LangGraph thread": 1,
        "LlamaIndex chat store key": 1,
        "session": 3,
    }
    assert data["versions"] == built.latest
    assert data["branches"] == {"main": None, "what-if": {"parent": "main", "version": built.tagged}}
    assert data["tags"] == {"before-answer": {"branch": "main", "version": built.tagged}}
    assert data["fragments"] >= 1 and data["disk_bytes"] > data["version_bytes"] > 0
    indexes = {i.name for i in lance.dataset(built.uri).describe_indices()}  # the core builds them lazily
    assert {i["name"] for i in data["indexes"]} == indexes
    assert (data["embedder"], data["dimension"]) == ("hashing", 32)
    text = text_result.out
    assert f"what-if (from main@{built.tagged})" in text and "hashing (32 dimensions)" in text
    old = tagged.json()
    assert old["version"] == built.tagged and not old["latest"] and old["records"] == 4


def test_sessions_are_named_by_adapter_and_filtered(in_process: InProcess, built: Built) -> None:
    everything, threads_result, notes_result, text_result = in_process.many(
        ["sessions", built.uri, "--json"],
        ["sessions", built.uri, "--namespace", "langgraph.checkpoints", "--json"],
        ["sessions", built.uri, "--prefix", "notes:", "--json"],
        ["sessions", built.uri],
    )
    found = {s["run_id"]: s for s in everything.json()}
    assert found[TRIP]["kind"] == "LangChain chat history" and found[TRIP]["key"] == "trip"
    assert found[TRIP]["records"] == 5 and found[TRIP]["roles"] == {"ai": 2, "human": 2, "tool": 1}
    assert found[THREAD]["kind"] == "LangGraph thread"
    assert found["llama_index.chat::user-42"]["kind"] == "LlamaIndex chat store key"
    assert found[LONG_SESSION]["kind"] == "session" and found[LONG_SESSION]["records"] == LONG_RECORDS
    assert found[TRIP]["first"] <= found[TRIP]["last"]
    threads = threads_result.json()
    assert [s["run_id"] for s in threads] == [THREAD]
    notes = notes_result.json()
    assert [s["run_id"] for s in notes] == ["notes:hostile", "notes:json", LONG_SESSION]
    text = text_result.out
    assert "6 sessions" in text and "LangChain chat history" in text and "LangGraph thread" in text


def test_log_in_an_80_column_terminal_wraps_instead_of_cropping(in_process: InProcess, built: Built) -> None:
    result = in_process("log", built.uri, "--limit", "0", env={"COLUMNS": "80"})
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    header = next(line for line in lines if line.split()[:2] == ["version", "time"])  # not a wrapped title
    title = [line.rstrip() for line in lines[: lines.index(header)] if line.strip()]
    assert all(line.endswith(" ·") for line in title[:-1]) and title[-1].endswith("20 versions")
    assert "rows" not in header.split()  # the row totals give way to the sessions touched
    rows = lines[lines.index(header) + 2 :]
    assert any(TRIP in line for line in rows)  # a session name fits unbroken
    # the tag is folded over as many lines as it needs, every character kept
    tags = "".join(line[header.index("tags") :].strip() for line in rows)
    assert "before-answer" in tags


def test_sessions_and_a_thread_in_an_80_column_terminal_keep_every_column(
    in_process: InProcess, built: Built
) -> None:
    listing, thread = in_process.many(
        ["sessions", built.uri], ["show", built.uri, "langgraph.checkpoints:support-7"], env={"COLUMNS": "80"}
    )
    assert listing.code == 0 and thread.code == 0, listing.err + thread.err
    lines = listing.out.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("session"))
    assert header.split() == ["session", "records", "roles", "active", "(UTC)"]  # kind left out
    names = ("langchain.history:trip", "langgraph.checkpoints:support-7", "llama_index.chat::user-42")
    for name in names:
        row = next(line for line in lines if line.lstrip().startswith(name + " "))
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d\s*$", row), row  # the last column, whole
    table = thread.out[thread.out.index("checkpoints, newest first") :].splitlines()
    header = next(line for line in table if line.lstrip().startswith("step"))
    assert header.split() == ["step", "source", "checkpoint", "id", "messages", "writes", "other", "channels"]
    assert max(len(line.rstrip()) for line in table) <= 80
    assert sum("turns" in line for line in table) == 4  # the channels column is not cropped


def test_long_session_names_and_tags_wrap_instead_of_cropping_at_any_width(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = str(tmp_path / "names.lance")
    store = ContextStore.open(uri, embedder=None)
    name = "langgraph.checkpoints:support-thread-with-a-very-long-name-1234"
    store.add(ContextRecord.from_content("x", run_id=name))
    store.tag("a-rather-long-tag-name-for-release-2026-12")
    for columns in ("80", "120"):
        listing, log = in_process.many(["sessions", uri], ["log", uri], env={"COLUMNS": columns})
        assert listing.code == 0 and log.code == 0, listing.err + log.err
        for out in (listing.out, log.out):
            assert max(len(line.rstrip()) for line in out.splitlines()) <= int(columns)
        # the activity time is the sessions table's last column: whole on the name's first line
        first = next(line for line in listing.out.splitlines() if line.lstrip().startswith(name[:20]))
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d\s*$", first), (columns, first)
        lines = log.out.splitlines()
        header = next(
            line for line in lines if line.split()[:2] == ["version", "time"]
        )  # not a wrapped title
        rows = lines[lines.index(header) + 2 :]
        tags = "".join(line[header.index("tags") :].strip() for line in rows)
        assert "a-rather-long-tag-name-for-release-2026-12" in tags, (columns, log.out)
        sessions = "".join(line[header.index("sessions") : header.index("tags")].strip() for line in rows)
        assert name in sessions, (columns, log.out)


def test_log_shows_what_each_version_did(in_process: InProcess, built: Built) -> None:
    everything, three, text_result, branch_result = in_process.many(
        ["log", built.uri, "--limit", "0", "--json"],
        ["log", built.uri, "-n", "3", "--json"],
        ["log", built.uri, "-n", "3"],
        ["log", built.uri, "--branch", "what-if", "--json"],
    )
    entries = everything.json()
    assert [e["version"] for e in entries] == list(range(built.latest, 0, -1))
    by_version = {e["version"]: e for e in entries}
    deleted = by_version[built.deleted]
    assert (deleted["operation"], deleted["added"], deleted["removed"], deleted["sessions"]) == (
        "delete",
        0,
        1,
        ["scratch"],
    )
    answered = by_version[built.answered]
    assert (answered["operation"], answered["added"], answered["removed"], answered["sessions"]) == (
        "add",
        1,
        0,
        [TRIP],
    )
    assert by_version[built.tagged]["tags"] == ["before-answer"]
    assert by_version[1]["operation"] == "create"
    assert len(three.json()) == 3
    text = text_result.out
    assert f"{built.latest - 3} older versions not shown" in text
    branch = branch_result.json()
    assert branch[0]["added"] == 1 and branch[0]["sessions"] == [TRIP]


def test_show_folds_tool_calls_and_summarises_the_image(in_process: InProcess, built: Built) -> None:
    text_result, json_result = in_process.many(
        ["show", built.uri, TRIP], ["show", built.uri, "trip", "--json"]
    )
    text = text_result.out
    assert "<image/png 2x2, " in text
    assert '→ weather({"city": "Kyoto"})' in text
    assert text.count("Kyoto: 18C, sakura in full bloom") == 1  # under its call, not again on its own
    assert text.index("Where should I travel") < text.index("weather(") < text.index("Lisbon for mild")
    data = json_result.json()  # the adapter's own id ("trip") works too
    assert data["run_id"] == TRIP and data["records"] == 5
    turns = data["turns"]
    assert [t["role"] for t in turns] == ["human", "human", "ai", "ai"]
    assert turns[1]["binaries"][0]["content_type"] == "image/png"
    assert (turns[1]["binaries"][0]["width"], turns[1]["binaries"][0]["height"]) == (2, 2)
    call = turns[2]["tool_calls"][0]
    assert call["name"] == "weather" and call["result"]["text"] == "Kyoto: 18C, sakura in full bloom"


def test_show_as_of_a_version_and_the_last_records(in_process: InProcess, built: Built) -> None:
    old_result, last_result, branch_result = in_process.many(
        ["show", built.uri, TRIP, "--tag", "before-answer", "--json"],
        ["show", built.uri, LONG_SESSION, "--last", "2", "--json"],
        ["show", built.uri, TRIP, "--branch", "what-if"],
    )
    old = old_result.json()
    assert old["records"] == 4 and all("Lisbon" not in (t["text"] or "") for t in old["turns"])
    last = last_result.json()
    assert [t["text"] for t in last["turns"]] == [
        f"long note {LONG_RECORDS - 2}",
        f"long note {LONG_RECORDS - 1}",
    ]
    assert last["turns"][0]["position"] == LONG_RECORDS - 2
    branch = branch_result.out
    assert "Try Patagonia in October." in branch and "Lisbon" not in branch


def test_show_a_langgraph_thread(in_process: InProcess, built: Built) -> None:
    json_result, text_result = in_process.many(
        ["show", built.uri, "support-7", "--json"], ["show", built.uri, THREAD]
    )
    data = json_result.json()
    steps = [c["step"] for c in data["checkpoints"]]
    assert steps == sorted(steps, reverse=True) and len(steps) == 6
    assert [m["text"] for m in data["checkpoints"][0]["messages"]] == [
        "my order is late",
        "answer 1",
        "still late",
        "answer 2",
    ]
    text = text_result.out
    assert "still late" in text and "checkpoints, newest first" in text


def test_hostile_text_prints_as_text(built: Built) -> None:
    # a real subprocess: colour forced by the environment of a fresh process
    result = run_cli("show", built.uri, "notes:hostile", env={"FORCE_COLOR": "1"})
    assert result.code == 0
    assert HOSTILE.split(" \x1b")[0] in result.out and "[bold]x[/bold]" in result.out
    assert "\x1b[31mred" not in result.out and "\\x1b[31mred" in result.out


def test_diff_between_versions_tags_and_branches(in_process: InProcess, built: Built) -> None:
    deleted, tag_result, across_result, text_result, folded_result = in_process.many(
        ["diff", built.uri, str(built.deleted - 1), str(built.deleted), "--json"],
        ["diff", built.uri, "before-answer", "--json"],
        ["diff", built.uri, "main", "what-if", "--json"],
        ["diff", built.uri, "before-answer", "what-if"],
        ["diff", built.uri, "before-answer"],
    )
    data = deleted.json()
    assert (data["added"], data["removed"]) == (0, 1)
    assert data["sessions"][0]["run_id"] == "scratch"
    assert data["sessions"][0]["removed"][0]["text"] == "scratch that"
    since_tag = tag_result.json()
    assert since_tag["to"] == {"branch": "main", "version": built.latest} and since_tag["removed"] == 0
    trip = next(s for s in since_tag["sessions"] if s["run_id"] == TRIP)
    assert [r["text"] for r in trip["added"]] == [
        "Kyoto for the cherry blossoms, or Lisbon for mild weather."
    ]
    across = across_result.json()
    trip = next(s for s in across["sessions"] if s["run_id"] == TRIP)
    assert [r["text"] for r in trip["added"]] == ["Try Patagonia in October."]
    assert "Lisbon" in trip["removed"][0]["text"]
    text = text_result.out
    assert f"main@{built.tagged} → what-if@{built.tagged + 1}" in text
    assert "+ ai" in text and "Try Patagonia in October." in text
    folded = folded_result.out
    assert f"… {LONG_RECORDS - 10} more (--full shows all)" in folded


def test_search_modes_filters_and_versions(in_process: InProcess, built: Built) -> None:
    results = in_process.many(
        ["search", built.uri, "cherry blossoms spring travel", "-k", "3", "--json"],
        ["search", built.uri, "peanuts", "--mode", "text", "--json"],
        ["search", built.uri, "sakura bloom", "--mode", "hybrid", "--session", "trip", "--json"],
        ["search", built.uri, "travel", "--where", '{"role": "ai"}', "--json"],
        ["search", built.uri, "Lisbon mild weather", "--mode", "text", "--tag", "before-answer", "--json"],
        ["search", built.uri, "peanuts", "--mode", "text"],
    )
    vector, text, hybrid, roles, old = (r.json() for r in results[:5])
    assert vector["hits"][0]["run_id"] == TRIP and vector["hits"][0]["score"] > 0
    assert vector["hits"][0]["session_records"] == 5 and vector["hits"][0]["position"] in (0, 4)
    assert {h["run_id"] for h in text["hits"]} == {"llama_index.chat::user-42"}
    assert all(h["text_score"] > 0 for h in text["hits"])
    assert hybrid["hits"] and {h["run_id"] for h in hybrid["hits"]} == {TRIP}
    assert hybrid["hits"][0]["text"] == "Kyoto: 18C, sakura in full bloom"
    assert roles["hits"] and {h["role"] for h in roles["hits"]} == {"ai"}
    assert old["version"] == built.tagged and old["hits"] == []
    table = results[5].out
    assert "Remind me to buy peanuts" in table and "2/2" in table


READS = [
    ["info"],
    ["info", "--tag", "before-answer"],
    ["sessions"],
    ["log"],
    ["show", TRIP],
    ["show", THREAD],
    ["diff", "before-answer", "what-if"],
    ["search", "cherry"],
    ["search", "peanuts", "--mode", "hybrid"],
    ["tag"],
    ["branch"],
]


def test_show_without_a_session_shows_the_only_one(in_process: InProcess, tmp_path: Path) -> None:
    uri = str(tmp_path / "one.lance")
    store = ContextStore.open(uri, embedder=None)
    store.add([ContextRecord.from_content("hello there", run_id="only", role="user"),
               ContextRecord.from_content("hi, how can I help?", run_id="only", role="assistant")])  # fmt: skip
    alone, named = in_process.many(["show", uri, "--json"], ["show", uri, "only", "--json"])
    assert alone.code == 0, alone.err
    assert alone.out == named.out and '"run_id": "only"' in alone.out and "how can I help" in alone.out
    empty = str(tmp_path / "empty.lance")
    ContextStore.open(empty, embedder=None)
    nothing = in_process("show", empty)
    assert nothing.code == 2 and "no session to show" in nothing.err


def test_read_commands_never_write(built: Built) -> None:
    # real subprocesses side by side: the entry point of every read command, sharing no state
    before = snapshot(built.uri)
    for result in run_many(*[[args[0], built.uri, *args[1:]] for args in READS]):
        assert result.code == 0, result.err
    assert snapshot(built.uri) == before
    assert ContextStore.open(built.uri, read_only=True, embedder=None).version() == built.latest


def test_errors_are_one_line(in_process: InProcess, built: Built, tmp_path: Path) -> None:
    cases = [
        (["info", str(tmp_path / "nowhere.lance")], 1, "no store at"),
        (["show", built.uri, "nobody"], 1, "no session 'nobody'"),
        (["info", built.uri, "--version", "999"], 1, "version 999"),
        (["diff", built.uri, "no-such-ref"], 1, "no version, tag or branch named 'no-such-ref'"),
        (["search", built.uri, "x", "--where", "{oops"], 2, "not JSON"),
        (["show", built.uri], 2, "name the SESSION to show: this version holds"),
        (["sessions", built.uri, "--namespace", "nope"], 2, "unknown namespace 'nope'"),
        (["log", built.uri, "-n", "-1"], 2, "-1 is not in the range x>=0"),
        (["searches", built.uri, "-n", "-1"], 2, "-1 is not in the range x>=0"),
    ]
    for (args, code, message), result in zip(
        cases, in_process.many(*[args for args, _, _ in cases]), strict=True
    ):
        assert result.code == code, (args, result)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lance-context") and message in lines[0], (args, lines)
        assert "Traceback" not in result.err and result.out == ""
    assert "read_only" not in in_process.many(cases[0][0])[0].err  # the Python option means nothing here
    debug = in_process("--debug", "show", built.uri, "nobody")
    assert (
        debug.code == 1
        and "Traceback" in debug.err
        and debug.err.strip().endswith("(lance-context sessions URI lists them)")
    )


def test_import_lance_context_stays_light() -> None:
    code = (
        "import sys, lance_context, lance_context.adapters; "
        "print(sorted(m for m in ('click', 'rich', 'starlette', 'jinja2', 'uvicorn', 'playwright', "
        "'lance_context._cli', 'lance_context._inspector') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_thread_paused_in_a_subgraph_shows_the_graphs_own_latest_state(
    in_process: InProcess, tmp_path: Path
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.types import interrupt

    from lance_context.langgraph import LanceCheckpointSaver

    def ask(state: MessagesState) -> dict[str, list[object]]:
        answer = interrupt("which city?")
        return {"messages": [AIMessage(f"booked {answer}")]}

    inner = StateGraph(MessagesState)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)

    def lookup(state: MessagesState) -> dict[str, list[object]]:
        call = {"name": "weather", "args": {}, "id": "c1"}
        return {"messages": [AIMessage("", tool_calls=[call]), ToolMessage("sunny", tool_call_id="c1")]}

    outer = StateGraph(MessagesState)
    outer.add_node("lookup", lookup)
    outer.add_node("booking", inner.compile())
    outer.add_edge(START, "lookup")
    outer.add_edge("lookup", "booking")
    outer.add_edge("booking", END)
    uri = str(tmp_path / "paused.lance")
    graph = outer.compile(checkpointer=LanceCheckpointSaver(uri=uri))
    graph.invoke({"messages": [HumanMessage("plan my trip")]}, {"configurable": {"thread_id": "trip"}})

    text, data = in_process.many(
        ["show", uri, "trip"], ["show", uri, "trip", "--json"], env={"COLUMNS": "80"}
    )
    assert text.code == 0, text.err
    latest = text.out[
        text.out.index("messages in the latest checkpoint") : text.out.index("checkpoints, newest")
    ]
    assert "plan my trip" in latest and "sunny" in latest  # the graph's own state, not the paused subgraph's
    table = text.out[text.out.index("checkpoints, newest first") :].splitlines()
    header = next(line for line in table if line.lstrip().startswith("step"))
    assert (
        header.split()[:3] == ["step", "source", "graph"] and max(len(line.rstrip()) for line in table) <= 80
    )
    assert any(line.split()[2:3] == ["booking"] for line in table) and any("(root)" in line for line in table)
    root = next(c for c in data.json()["checkpoints"] if c["namespace"] == "")
    assert root["message_count"] == 3 and len(root["messages"]) == 2  # the tool's result folds into its call


def test_a_langgraph_store_namespace_shows_each_items_key_and_value(
    in_process: InProcess, tmp_path: Path
) -> None:
    from lance_context.langgraph import LanceStore

    uri = str(tmp_path / "items.lance")
    items = LanceStore(store=ContextStore.open(uri, embedder=None))
    items.put(("users", "u1"), "prefs", {"drink": "green tea"})
    items.put(("users", "u1"), "city", {"text": "Lisbon"}, index=False)
    shown, changed = in_process.many(
        ["show", uri, "langgraph.store:users.u1"], ["diff", uri, "1"], env={"COLUMNS": "80"}
    )
    text = "\n".join(line.rstrip() for line in shown.out.splitlines())
    assert shown.code == 0 and 'prefs = {\n    "drink": "green tea"\n  }' in text
    assert 'city = {\n    "text": "Lisbon"' in text  # an item stored without an index shows too
    assert 'prefs = { "drink": "green tea" }' in changed.out and "<application/" not in changed.out


def test_a_thread_written_with_an_encrypting_serializer_lists_its_checkpoints(
    in_process: InProcess, tmp_path: Path
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
    from langgraph.graph import END, START, MessagesState, StateGraph

    from lance_context.langgraph import LanceCheckpointSaver

    uri = str(tmp_path / "sealed.lance")
    saver = LanceCheckpointSaver(uri=uri, serde=EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16))
    graph = StateGraph(MessagesState)
    graph.add_node("reply", lambda state: {"messages": [AIMessage("the secret answer")]})
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    graph.compile(checkpointer=saver).invoke(
        {"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "e"}}
    )

    text, data = in_process.many(["show", uri, "e"], ["show", uri, "e", "--json"], env={"COLUMNS": "100"})
    assert text.code == 0, text.err
    assert "stored as 'msgpack+aes'" in text.out and "the secret answer" not in text.out
    checkpoints = data.json()["checkpoints"]
    assert [c["step"] for c in checkpoints] == [1, 0, -1] and {c["sealed"] for c in checkpoints} == {
        "msgpack+aes"
    }


def test_a_thread_with_writes_but_no_checkpoint_shows_an_empty_table(
    in_process: InProcess, tmp_path: Path
) -> None:
    from lance_context.langgraph import LanceCheckpointSaver

    uri = str(tmp_path / "bare.lance")
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": "c1"}}
    LanceCheckpointSaver(uri=uri).put_writes(config, [("messages", "hi")], "task-1")  # type: ignore[arg-type]
    shown = in_process("show", uri, "t1")
    assert shown.code == 0, shown.err
    assert "0 checkpoints shown" in shown.out and "checkpoints, newest first" in shown.out


def test_show_numbers_one_record_per_id_and_keeps_an_empty_message_empty(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = str(tmp_path / "copies.lance")
    store = ContextStore.open(uri, embedder=None)
    store.add(
        [
            ContextRecord(id="a", run_id="s", text_payload="one"),
            ContextRecord(id="b", run_id="s", text_payload=""),
        ]
    )
    store.add(ContextRecord(id="a", run_id="s", text_payload="one again"))  # add() of a stored id: two copies
    shown, as_json, tail = in_process.many(
        ["show", uri, "s"], ["show", uri, "s", "--json"], ["show", uri, "s", "--last", "1"]
    )
    assert shown.code == 0 and "s · session · 2 records" in shown.out and "#3" not in shown.out
    data = as_json.json()
    assert data["records"] == 2 and [t["position"] for t in data["turns"]] == [0, 1]
    assert [t["text"] for t in data["turns"]] == ["", "one again"]  # an empty message is "", not null
    assert "last 1 of 2 records" in tail.out and "#2" in tail.out


def test_tag_and_branch_refuse_delete_or_a_version_without_a_name(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = str(tmp_path / "names.lance")
    store = ContextStore.open(uri, embedder=None)
    store.add(ContextRecord(run_id="s", text_payload="x"))
    store.tag("keep")
    results = in_process.many(
        ["tag", uri, "--delete", "-y"], ["tag", uri, "-V", "1"], ["branch", uri, "--delete", "-y"]
    )
    assert [(r.code, "name the" in r.err) for r in results] == [(2, True)] * 3
    assert store.tags() == {"keep": 2}
