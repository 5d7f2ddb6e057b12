"""The `search` toolset's embedded index: corpus checks, building, determinism, the CLI, the tool's schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mentor_server.cli import main
from mentor_server.scoring.types import ScoringConfigError
from mentor_server.toolsets import load_toolsets_file
from mentor_server.toolsets.search import MAX_TOP_K, search_toolset
from mentor_server.toolsets.search_index import (
    MANIFEST,
    CorpusError,
    Document,
    SearchIndex,
    build_index,
    query_words,
    read_corpus,
)

DOCS = [
    {"id": "brelmor", "title": "Brelmor", "text": "Brelmor is a river town founded in 1742 by Ostrava Kell."},
    {"id": "kell", "title": "Ostrava Kell", "text": "Ostrava Kell was a cartographer born in Vantemoor."},
    {"id": "vantemoor", "title": "Vantemoor", "text": "Vantemoor is a hill village known for slate."},
    {"id": "quell", "title": "Quell", "text": "The Quell is a river that runs through Brelmor."},
    # Two documents that score the same for "twin": the order must come from their ids.
    {"id": "twin-b", "title": "", "text": "twin"},
    {"id": "twin-a", "title": "", "text": "twin"},
]


def write_corpus(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search")
    corpus = write_corpus(root / "corpus.jsonl", DOCS)
    build_index(corpus, root / "index", threads=1)
    return root / "index"


# ---------------------------------------------------------------------------- the corpus
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not JSON"),
        ('["a list"]', "line 2: expected an object"),
        ('{"title": "t", "text": "x"}', "line 2: 'id' must be a non-empty string"),
        ('{"id": "", "text": "x"}', "line 2: 'id' must be a non-empty string"),
        ('{"id": "b", "title": 3, "text": "x"}', "line 2: 'title' must be a string"),
        ('{"id": "b", "title": "t"}', "line 2: 'text' must be a string"),
        ('{"id": "a", "title": "t", "text": "x"}', "line 2: duplicate id 'a'"),
    ],
    ids=["not-json", "not-object", "no-id", "empty-id", "title-type", "no-text", "duplicate-id"],
)
def test_a_bad_corpus_line_is_an_error_naming_it(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"id": "a", "title": "A", "text": "first"}) + "\n" + line + "\n")
    with pytest.raises(CorpusError, match=message):
        list(read_corpus(path))


def test_flashrag_contents_and_integer_ids_are_read(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "c.jsonl", [{"id": 7, "contents": '"Brelmor"\nA river town.'}])
    path.write_text(path.read_text() + "\n\n")  # blank lines are skipped
    assert list(read_corpus(path)) == [Document("7", "Brelmor", "A river town.")]


def test_build_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", DOCS)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty"):
        build_index(corpus, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_open_refuses_a_folder_without_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not a search index"):
        SearchIndex.open(tmp_path)


# ---------------------------------------------------------------------------- searching
def test_the_best_document_comes_first_and_ties_are_ordered_by_id(built: Path) -> None:
    index = SearchIndex.open(built)
    assert index.documents == len(DOCS)
    assert [d.id for d in index.search("When was Brelmor founded?", 1)] == ["brelmor"]
    assert index.search("Who was Ostrava Kell?", 1)[0].title == "Ostrava Kell"
    assert [d.id for d in index.search("twin", 2)] == ["twin-a", "twin-b"]


def test_search_is_deterministic_across_builds_and_thread_counts(tmp_path: Path, built: Path) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", DOCS)
    build_index(corpus, tmp_path / "two", threads=2)
    queries = ["river town", "Brelmor", "slate village", "twin", "born cartographer Kell"]
    first = [SearchIndex.open(built).search(q, 4) for q in queries]
    assert [SearchIndex.open(tmp_path / "two").search(q, 4) for q in queries] == first
    assert [SearchIndex.in_memory(Document(**d) for d in DOCS).search(q, 4) for q in queries] == first


def test_ties_past_the_fetch_window_are_still_ordered_by_id(tmp_path: Path) -> None:
    """300 documents score the same for "lantern": the three smallest ids win, in any build."""
    records = [{"id": f"doc-{i:03d}", "title": "", "text": "a lantern"} for i in range(300)]
    rng = __import__("random").Random(1)
    rng.shuffle(records)
    corpus = write_corpus(tmp_path / "c.jsonl", records)
    build_index(corpus, tmp_path / "two", threads=2)
    expected = ["doc-000", "doc-001", "doc-002"]
    assert [d.id for d in SearchIndex.open(tmp_path / "two").search("lantern", 3)] == expected
    assert [d.id for d in SearchIndex.in_memory(Document(**r) for r in records).search("lantern", 3)] == expected


@pytest.mark.parametrize(
    "query",
    ['title:Brelmor AND "founded', "Brelmor)(", "Brelmor -founded +river", "BRELMOR^5 founded~2"],
    ids=["field-and-quote", "parens", "plus-minus", "boost-fuzzy"],
)
def test_query_syntax_is_never_syntax(built: Path, query: str) -> None:
    """A model's punctuation and operators are plain text: the same words, the same hits."""
    index = SearchIndex.open(built)
    assert index.search(query, 3) == index.search(query_words(query), 3)
    assert index.search(query, 1)[0].id == "brelmor"


def test_the_tool_reports_bad_calls_as_errors(built: Path) -> None:
    toolset = search_toolset(SearchIndex.open(built))
    ok = toolset.execute("search", {"query": "Vantemoor slate river"})
    assert ok.ok and ok.result[0] == {"id": "vantemoor", "title": "Vantemoor", "text": DOCS[2]["text"]}
    assert len(ok.result) == 3  # the default top_k
    assert json.loads(ok.content) == ok.result
    cases = {
        "blank": ({"query": "   "}, "invalid_arguments"),
        "too-many": ({"query": "x", "top_k": MAX_TOP_K + 1}, "invalid_arguments"),
        "zero": ({"query": "x", "top_k": 0}, "invalid_arguments"),
        "no-words": ({"query": "?!"}, "tool_error"),
        "too-long": ({"query": "word " * 300}, "tool_error"),
        "extra": ({"query": "x", "k": 2}, "invalid_arguments"),
    }
    for name, (arguments, kind) in cases.items():
        execution = toolset.execute("search", arguments)
        assert (execution.ok, execution.error_type) == (False, kind), name


def test_trl_sees_the_schema_the_service_validates(built: Path) -> None:
    from transformers.utils.chat_template_utils import get_json_schema

    toolset = search_toolset(SearchIndex.open(built))
    (fn,) = toolset.functions()
    theirs = get_json_schema(fn)["function"]
    ours = toolset.schemas()[0]["function"]
    assert (
        (theirs["name"], theirs["description"])
        == (ours["name"], ours["description"])
        == (fn.__name__, ours["description"])
    )
    assert theirs["parameters"]["required"] == ours["parameters"]["required"] == ["query"]
    for arg, schema in theirs["parameters"]["properties"].items():
        assert schema["type"] == ours["parameters"]["properties"][arg]["type"]
        assert schema["description"] == ours["parameters"]["properties"][arg]["description"]
    assert fn(query="Brelmor", top_k=1)[0]["id"] == "brelmor"


# ---------------------------------------------------------------------------- configuration
def test_a_toolsets_file_names_an_index_relative_to_itself(tmp_path: Path, built: Path) -> None:
    config = tmp_path / "conf"
    config.mkdir()
    (config / "tools.json").write_text(
        json.dumps({"toolsets": [{"name": "wiki", "description": "d", "search": {"index": str(built)}}]})
    )
    (relative,) = load_toolsets_file(config / "tools.json")
    assert relative.name == "wiki" and relative.description == "d"
    assert relative.execute("search", {"query": "Quell river", "top_k": 1}).result[0]["id"] == "quell"
    link = config / "index"
    link.symlink_to(built)
    (config / "rel.yaml").write_text("toolsets:\n  - name: wiki\n    search: {index: index, max_top_k: 2}\n")
    (from_yaml,) = load_toolsets_file(config / "rel.yaml")
    assert from_yaml.execute("search", {"query": "x", "top_k": 3}).error_type == "invalid_arguments"


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({}, "exactly one of 'index'"),
        ({"index": "a", "url": "http://x/retrieve"}, "exactly one of 'index'"),
        ({"index": "missing"}, "not a search index"),
        ({"index": "a", "timeout_s": 3}, "apply to a 'url' retriever only"),
        ({"url": "ftp://x/retrieve"}, "http"),
        ({"url": "http://x/retrieve", "timeout_s": 0}, "timeout_s"),
        ({"url": "http://x/retrieve", "max_top_k": 0}, "max_top_k"),
        ({"url": "http://x/r", "top": 1}, "unknown key"),
        ("an index", "expected an object"),
    ],
    ids=["neither", "both", "no-index", "timeout-on-index", "scheme", "timeout", "max-top-k", "unknown", "not-object"],
)
def test_a_bad_search_entry_is_a_config_error_naming_it(tmp_path: Path, search: Any, message: str) -> None:
    (tmp_path / "tools.json").write_text(json.dumps({"toolsets": [{"name": "s", "search": search}]}))
    with pytest.raises(ScoringConfigError, match=message) as caught:
        load_toolsets_file(tmp_path / "tools.json")
    assert caught.value.param is not None and caught.value.param.startswith("toolsets[0]")


def test_a_search_entry_takes_no_tool_schemas(tmp_path: Path) -> None:
    entry = {"name": "s", "search": {"url": "http://x/r"}, "tools": []}
    (tmp_path / "tools.json").write_text(json.dumps({"toolsets": [entry]}))
    with pytest.raises(ScoringConfigError, match="no 'tools'"):
        load_toolsets_file(tmp_path / "tools.json")


# ---------------------------------------------------------------------------- the CLI
def test_cli_builds_and_searches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", DOCS)
    assert main(["index", "build", str(corpus), "--out", str(tmp_path / "ix")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == len(DOCS)
    assert json.loads((tmp_path / "ix" / MANIFEST).read_text())["documents"] == len(DOCS)
    assert main(["index", "search", str(tmp_path / "ix"), "Ostrava Kell", "--top-k", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "kell"


def test_cli_stops_at_a_bad_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "ok"}\n{"id": "a", "text": "again"}\n')
    assert main(["index", "build", str(corpus), "--out", str(tmp_path / "ix")]) == 2
    assert "line 2: duplicate id 'a'" in capsys.readouterr().err
    assert main(["index", "search", str(tmp_path / "nothing"), "q"]) == 2
