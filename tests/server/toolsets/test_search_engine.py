"""The column-wise BM25 engine against a plain-Python reference: words, ranking, chunks, readers, forks.

The engine splits an indexed text with a byte table and pyarrow but a query with `words()` in Python;
these tests hold both to one reference (below: `words()` per field, PyStemmer's English stemmer, BM25
with k1 1.2, b 0.75 and a title boost of 2, ties by id). They also pin what the build promises beside
the ranking: chunk size and thread count change no result (and thread count no byte), pyarrow's reader
and the line-by-line reader build the same index, edge cases, and searching after a fork.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import Stemmer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mentor_server.toolsets import search_corpus, search_index
from mentor_server.toolsets.search_index import MANIFEST, CorpusError, Document, SearchIndex, build_index, words

K1, B = 1.2, 0.75
BOOSTS = (("title", 2.0), ("text", 1.0))
STEMMER = Stemmer.Stemmer("english")
# Deterministic and modest: the same examples every run, and the file stays within seconds.
PROPERTY = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------------------- the reference
def reference_scores(docs: Sequence[Document], query: str) -> dict[str, float]:
    """BM25 of every document that matches `query`, by id, computed word by word in float64."""
    n_docs = len(docs)
    terms = set(STEMMER.stemWords(words(query)))
    scores: dict[str, float] = {}
    for field, boost in BOOSTS:
        stems = [STEMMER.stemWords(words(getattr(doc, field))) for doc in docs]
        total = sum(len(s) for s in stems)
        mean_length = total / n_docs if total else 1.0
        df = Counter(term for s in stems for term in set(s))
        for doc, doc_stems in zip(docs, stems, strict=True):
            tf = Counter(doc_stems)
            for term in terms & tf.keys():
                idf = math.log(1 + (n_docs - df[term] + 0.5) / (df[term] + 0.5))
                norm = K1 * (1 - B + B * len(doc_stems) / mean_length)
                weight = boost * idf * tf[term] * (K1 + 1) / (tf[term] + norm)
                scores[doc.id] = scores.get(doc.id, 0.0) + weight
    return scores


def assert_ranked_like_reference(got: list[str], scores: dict[str, float], top_k: int) -> None:
    """`got` is the reference's top_k: by score, ties by id. The engine stores float32 weights, so
    scores closer than a relative 1e-5 (but not equal) may come in either order; equal ones may not."""
    expected = sorted(scores, key=lambda doc_id: (-scores[doc_id], doc_id))
    assert len(got) == min(top_k, len(expected)), (got, expected)
    clusters: list[list[str]] = []  # runs of reference scores within tolerance of their neighbour
    for doc_id in expected:
        if clusters and scores[clusters[-1][-1]] - scores[doc_id] <= 1e-5 * scores[doc_id]:
            clusters[-1].append(doc_id)
        else:
            clusters.append([doc_id])
    at = 0
    for cluster in clusters:
        taken = got[at : at + len(cluster)]
        if len({scores[doc_id] for doc_id in cluster}) == 1:
            assert taken == cluster[: len(taken)], (got, expected)  # an exact tie: smallest ids first
        else:
            assert set(taken) <= set(cluster), (got, expected)
        at += len(cluster)
        if at >= len(got):
            break


def write_corpus(path: Path, records: Sequence[Any], *, ensure_ascii: bool = True) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in records), encoding="utf-8")
    return path


def documents_table(folder: Path) -> list[dict[str, Any]]:
    return pa.ipc.open_file(pa.memory_map(str(folder / "documents.arrow"))).read_all().to_pylist()  # type: ignore[no-any-return]


def ranked_ids(index: SearchIndex, query: str, top_k: int) -> list[str]:
    return [doc.id for doc in index.search(query, top_k)]


# ---------------------------------------------------------------------------- 1. words, index vs query
# Words, glued by separators (or by nothing) into texts: case, digits, `_`, accents (É, ß, İ),
# Greek with Σ, CJK, emoji, a titlecase digraph, the Kelvin sign (lower-cases to ASCII k), a superscript.
WORDS = [
    "river", "rivers", "River", "RIVER", "running", "runs", "town", "Town2", "42", "x_1", "_", "café", "CAFÉ",
    "École", "Straße", "STRASSE", "İstanbul", "naïve", "ΟΔΟΣ", "οδός", "Σ", "ΣΟΦΙΑ", "東京", "東京都", "😀",
    "ǅemal", "\u212a", "x²",
]  # fmt: skip
# ASCII and non-ASCII punctuation and spaces (U+00A0, U+3000, a zero-width space), and a lone
# surrogate (JSON may carry "\ud800"; the engine reads it as `?`, which separates words).
SEPARATORS = [
    " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b", ".", ",", "-", "'", ":", "(", ")", "/", "!?",
    "’", "—", "“", "”", "«", "»", "…", "\ud800",
]  # fmt: skip
PIECES = st.one_of(st.sampled_from(WORDS), st.sampled_from(SEPARATORS), st.text(max_size=3))
TEXTS = st.lists(PIECES, max_size=10).map("".join)
IDS = st.text(alphabet="abAB9_ é ß東😀-", min_size=1, max_size=3)
DOCS = st.lists(st.builds(Document, IDS, TEXTS, TEXTS), min_size=1, max_size=10, unique_by=lambda d: d.id)
QUERIES = st.one_of(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join), TEXTS)


def test_the_reference_is_not_trivially_satisfied() -> None:
    """Hand-checked values, so the reference (and the comparison) can fail: a title match counts
    double, and the tie between two equal documents goes to the smaller id."""
    docs = [Document("b", "", "river"), Document("a", "", "river"), Document("c", "river", "")]
    scores = reference_scores(docs, "river")
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    assert scores["a"] == scores["b"] == pytest.approx(idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / 2)))
    title_idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    assert scores["c"] == pytest.approx(2 * title_idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3)))
    assert_ranked_like_reference(["c", "a", "b"], scores, 3)
    with pytest.raises(AssertionError):
        assert_ranked_like_reference(["c", "b", "a"], scores, 3)
    assert ranked_ids(SearchIndex.in_memory(docs), "river", 3) == ["c", "a", "b"]


def file_scores(folder: Path, query: str) -> dict[str, float]:
    """Each matching document's score summed from a built index's files (the layout the module
    documents: terms.txt's line numbers are term ids, {field}.indptr/docs/weights.npy are CSR rows)."""
    terms = {term: i for i, term in enumerate((folder / "terms.txt").read_text(encoding="utf-8").split("\n")[:-1])}
    ids = [row["id"] for row in documents_table(folder)]
    scores: dict[str, float] = {}
    for field, _ in BOOSTS:
        indptr, docs, weights = (np.load(folder / f"{field}.{part}.npy") for part in ("indptr", "docs", "weights"))
        for stem in set(STEMMER.stemWords(words(query))) & terms.keys():
            at = slice(int(indptr[terms[stem]]), int(indptr[terms[stem] + 1]))
            for row, weight in zip(docs[at].tolist(), weights[at].tolist(), strict=True):
                scores[ids[row]] = scores.get(ids[row], 0.0) + weight
    return scores


def build_both(docs: Sequence[Document], tmp: Path) -> tuple[SearchIndex, SearchIndex]:
    """The same documents indexed in memory and by `build_index` from JSONL (raw UTF-8 when it can be)."""
    raw = not any("\ud800" in d.title + d.text for d in docs)  # a lone surrogate cannot be raw UTF-8
    corpus = write_corpus(tmp / "c.jsonl", [d.to_dict() for d in docs], ensure_ascii=not raw)
    build_index(corpus, tmp / "ix", threads=2)
    return SearchIndex.in_memory(docs), SearchIndex.open(tmp / "ix")


@PROPERTY
@given(docs=DOCS, queries=st.lists(QUERIES, min_size=1, max_size=3), top_k=st.integers(1, 12))
def test_an_index_finds_what_the_reference_finds(docs: list[Document], queries: list[str], top_k: int) -> None:
    """The index's words meet the query's: the hits are the documents the reference matches, in
    memory and from JSONL alike, in one order; a smaller top_k is a prefix of a larger one; copies
    of a document (the same score, whatever the weights) come in id order."""
    docs = [*docs, *(Document(d.id + "~", d.title, d.text) for d in docs[:2])]  # "~" is in no id
    content = {d.id: (d.title, d.text) for d in docs}
    with tempfile.TemporaryDirectory() as tmp:
        memory, built = build_both(docs, Path(tmp))
        for query in [*queries, *(d.text for d in docs[:2]), *(d.title for d in docs[:2])]:
            if not words(query):
                for index in (memory, built):
                    with pytest.raises(ValueError, match="no words"):
                        index.search(query, top_k)
                continue
            every = ranked_ids(memory, query, len(docs))
            assert sorted(every) == sorted(reference_scores(docs, query)), query
            assert ranked_ids(built, query, len(docs)) == every
            assert ranked_ids(memory, query, top_k) == ranked_ids(built, query, top_k) == every[:top_k]
            for at, doc_id in enumerate(every):
                assert all(doc_id < later for later in every[at + 1 :] if content[later] == content[doc_id])


def test_punctuation_around_a_word_does_not_lengthen_its_document() -> None:
    """'(river)' and 'river' are one word each and tie (the smaller id first); 'river town' is longer.
    (pyarrow's split leaves an empty run at a blanked end; the build must not count it as a word.)"""
    docs = [Document("a", "", "(river)"), Document("b", "", "river"), Document("c", "", "river town")]
    assert ranked_ids(SearchIndex.in_memory(docs), "river", 3) == ["a", "b", "c"]


@PROPERTY
@example(docs=[Document("a", "", "river."), Document("b", "", "river")], queries=["river"], top_k=2)
@given(docs=DOCS, queries=st.lists(QUERIES, min_size=1, max_size=3), top_k=st.integers(1, 12))
def test_an_index_scores_like_the_reference(docs: list[Document], queries: list[str], top_k: int) -> None:
    """The weights in the files sum to the reference's BM25 (float32: within 1e-5), and the ranking
    is the reference's: by score, exact ties by id."""
    with tempfile.TemporaryDirectory() as tmp:
        memory, _ = build_both(docs, Path(tmp))
        for query in filter(words, [*queries, *(d.text for d in docs[:2]), *(d.title for d in docs[:2])]):
            scores = reference_scores(docs, query)
            from_files = file_scores(Path(tmp) / "ix", query)
            assert from_files.keys() == scores.keys()
            assert all(from_files[i] == pytest.approx(scores[i], rel=1e-5) for i in scores), (from_files, scores)
            assert_ranked_like_reference(ranked_ids(memory, query, top_k), scores, top_k)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=TEXTS)
def test_words_are_regex_word_runs_of_the_case_folded_text(text: str) -> None:
    """`words(text)` is exactly `re.findall(r"\\w+", text.casefold())`: case folding is the same for a
    letter wherever it stands, so splitting at ASCII separators first changes nothing (with
    `lower()`, Greek final sigma would depend on neighbours across a `.`)."""
    assert words(text) == re.findall(r"\w+", text.encode("utf-8", "replace").decode("utf-8").casefold())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("River’s «café»—naïve", ["river", "s", "café", "naïve"]),
        ("a\u00a0b\tc\nd", ["a", "b", "c", "d"]),
        ("東京都😀x_1 42", ["東京都", "x_1", "42"]),
        ("ΟΔΟΣ.Α όδος", ["οδοσ", "α", "όδοσ"]),  # case folding: σ and ς are one letter
        ("STRASSE straße", ["strasse", "strasse"]),
        ("İstanbul", ["i", "stanbul"]),  # "İ" folds to "i" + U+0307, which is not a word character
        ("a\ud800b", ["a", "b"]),
    ],
    ids=["glued-punctuation", "spaces", "cjk-emoji-digits", "final-sigma", "sharp-s", "dotted-i", "surrogate"],
)
def test_a_document_is_found_by_each_of_its_words(tmp_path: Path, text: str, expected: list[str]) -> None:
    """The index's split and the query's meet on texts where `words` differs from a naive split."""
    assert words(text) == expected
    docs = [Document("hit", "", text), Document("other", "", "unrelated filler")]
    write_corpus(tmp_path / "c.jsonl", [d.to_dict() for d in docs])
    build_index(tmp_path / "c.jsonl", tmp_path / "ix", threads=1)
    for index in (SearchIndex.in_memory(docs), SearchIndex.open(tmp_path / "ix")):
        for word in expected:
            assert ranked_ids(index, word, 2) == ["hit"], word
        with pytest.raises(ValueError, match="no words"):
            index.search("“—”…", 2)


# ---------------------------------------------------------------------------- 2. chunks and threads
CHUNK_WORDS = [
    "river", "town", "slate", "Brelmor", "running", "runs", "café—naïve", "«river»town", "東京’s", "ΟΔΟΣ.Α",
    "x_1", "42", "—", "“”", "naïve", "straße", "CAFÉ",
]  # fmt: skip


def chunk_corpus() -> list[dict[str, str]]:
    rng = random.Random(13)
    records = [
        {
            "id": f"d{rng.randrange(10_000):04d}-{i}",
            "title": " ".join(rng.choices(CHUNK_WORDS, k=rng.randrange(0, 3))),
            "text": " ".join(rng.choices(CHUNK_WORDS, k=rng.randrange(1, 15))),
        }
        for i in range(47)
    ]
    records += [{"id": "no-title", "title": "", "text": "river"}, {"id": "no-text", "title": "river", "text": ""}]
    return [*records, {"id": "no-words", "title": "—", "text": "“” …"}]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_chunk_size_and_threads_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = chunk_corpus()
    docs = [Document(**r) for r in records]
    corpus = write_corpus(tmp_path / "c.jsonl", records, ensure_ascii=False)
    files: dict[tuple[int, int], dict[str, bytes]] = {}
    indexes: dict[str, SearchIndex] = {}
    for chunk in (3, search_index._CHUNK_DOCS):
        monkeypatch.setattr(search_index, "_CHUNK_DOCS", chunk)
        for threads in (1, 2):
            build_index(corpus, tmp_path / f"ix-{chunk}-{threads}", threads=threads)
            files[chunk, threads] = folder_bytes(tmp_path / f"ix-{chunk}-{threads}")
            indexes[f"built-{chunk}-{threads}"] = SearchIndex.open(tmp_path / f"ix-{chunk}-{threads}")
        indexes[f"memory-{chunk}"] = SearchIndex.in_memory(docs)
    (small, default) = sorted({chunk for chunk, _ in files})
    assert files[small, 1] == files[small, 2]
    assert files[default, 1] == files[default, 2]
    # Term ids follow the chunks (first appearance), so only the files that do not hold them match.
    for name in ("id_rank.npy", "documents.arrow"):
        assert files[small, 1][name] == files[default, 1][name]
    assert files[small, 1]["terms.txt"] != files[default, 1]["terms.txt"]  # the chunks really differ
    queries = [*words(" ".join(CHUNK_WORDS)), "river town", "café slate 42", "runs Brelmor 東京"]
    for query in queries:
        results = {name: index.search(query, len(records)) for name, index in indexes.items()}
        first = results["built-3-1"]
        assert all(result == first for result in results.values()), query
        assert sorted(d.id for d in first) == sorted(reference_scores(docs, query)), query


def test_a_corpus_past_the_readers_block_builds_the_same_files_on_any_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over 8 MB, pyarrow's reader hands the texts over in several blocks; chunks of 100 documents
    then cross a block boundary. One thread or two, the files are the same bytes."""
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(500)] + CHUNK_WORDS
    records = [
        {"id": f"big-{i:04d}", "title": rng.choice(vocabulary), "text": " ".join(rng.choices(vocabulary, k=1900))}
        for i in range(1000)
    ]
    corpus = write_corpus(tmp_path / "c.jsonl", records)
    assert corpus.stat().st_size > 9 << 20
    monkeypatch.setattr(search_index, "_CHUNK_DOCS", 100)
    build_index(corpus, tmp_path / "one", threads=1)
    build_index(corpus, tmp_path / "two", threads=2)
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")
    built = SearchIndex.open(tmp_path / "two")
    memory = SearchIndex.in_memory(Document(**r) for r in records)
    for record in (records[0], records[-1]):  # the first block's documents and the last one's
        assert record in [d.to_dict() for d in built.search(record["title"], 1000)]
    for query in ("w7", "w8 w9 river", "café 東京"):
        assert built.search(query, 50) == memory.search(query, 50)


# ---------------------------------------------------------------------------- 3. the two readers
MIXED: list[dict[str, Any]] = [
    {"id": "plain", "title": "River Town", "text": "Brelmor is a river town.", "score": 1.5},
    {"id": "flash", "contents": '"Brelmor"\nBrelmor is a river town on slate.', "tags": ["a", 1, None]},
    {"id": "one-line", "contents": "contents of one line are all text, river"},
    {"id": "no-title", "text": "no title key, river", "meta": {"x": None, "y": [1.5, {"z": True}]}},
    {"id": "null-title", "title": None, "text": "a null title, town"},
    {"id": "null-text", "title": "ignored", "text": None, "contents": '"Kell"\nA cartographer of the river.'},
    {"id": "both", "title": "T", "text": "text wins over contents", "contents": '"X"\nnot this'},
    {"id": "empty", "title": "", "text": "", "flag": False, "n": None},
    {"id": "7", "title": "Seven", "text": "an id that is a number in the other file", "url": "http://x/7"},
    {"id": "東京", "contents": '  "Quoted ""title""" \n  spaced text, second river line \n', "nested": [[[]]]},
    {"id": "é", "title": "Café", "text": "naïve—river’s «town»"},
]
MIXED_QUERIES = ["river", "town", "Brelmor slate", "cartographer", "contents", "Quoted", "café naïve", "seven"]


def spy_on_fast_reader(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each build's answer from pyarrow's reader: True when it took the file."""
    taken: list[bool] = []
    real: Callable[..., Any] = search_corpus.read_columns

    def spy(*args: Any, **kwargs: Any) -> Any:
        columns = real(*args, **kwargs)
        taken.append(columns is not None)
        return columns

    monkeypatch.setattr(search_corpus, "read_columns", spy)
    return taken


def test_both_readers_build_the_same_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = spy_on_fast_reader(monkeypatch)
    fast = write_corpus(tmp_path / "fast.jsonl", MIXED, ensure_ascii=False)
    slow = write_corpus(tmp_path / "slow.jsonl", [{**r, "id": 7} if r["id"] == "7" else r for r in MIXED])
    build_index(fast, tmp_path / "fast", threads=2)
    build_index(slow, tmp_path / "slow", threads=2)
    assert taken == [True, False]
    expected = [d.to_dict() for d in search_index.read_corpus(fast)]
    assert documents_table(tmp_path / "fast") == documents_table(tmp_path / "slow") == expected
    fast_files, slow_files = folder_bytes(tmp_path / "fast"), folder_bytes(tmp_path / "slow")
    for name in fast_files.keys() - {MANIFEST, "documents.arrow"}:
        assert fast_files[name] == slow_files[name], name
    docs = [Document(**d) for d in expected]
    indexes = [SearchIndex.open(tmp_path / "fast"), SearchIndex.open(tmp_path / "slow"), SearchIndex.in_memory(docs)]
    for query in MIXED_QUERIES:
        first = indexes[0].search(query, len(MIXED))
        assert first and all(index.search(query, len(MIXED)) == first for index in indexes), query
        assert sorted(d.id for d in first) == sorted(reference_scores(docs, query)), query


@pytest.mark.parametrize("corpus", ["chunks", "mixed"])
def test_the_fixed_corpora_score_like_the_reference(tmp_path: Path, corpus: str) -> None:
    records = chunk_corpus() if corpus == "chunks" else MIXED
    write_corpus(tmp_path / "c.jsonl", records, ensure_ascii=False)
    build_index(tmp_path / "c.jsonl", tmp_path / "ix")
    docs = [Document(**d) for d in documents_table(tmp_path / "ix")]
    index = SearchIndex.open(tmp_path / "ix")
    for query in [*MIXED_QUERIES, *words(" ".join(CHUNK_WORDS)), "runs Brelmor 東京"]:
        scores = reference_scores(docs, query)
        from_files = file_scores(tmp_path / "ix", query)
        assert from_files.keys() == scores.keys()
        assert all(from_files[i] == pytest.approx(scores[i], rel=1e-5) for i in scores), (query, from_files, scores)
        assert_ranked_like_reference(ranked_ids(index, query, len(docs)), scores, len(docs))


GOOD = [{"id": "a", "title": "A", "text": "first"}] + [{"id": f"g{i}", "text": f"good {i}"} for i in range(19)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 21: not JSON"),
        ('["a list"]', "line 21: expected an object"),
        ('{"title": "t", "text": "x"}', "line 21: 'id' must be a non-empty string"),
        ('{"id": "", "text": "x"}', "line 21: 'id' must be a non-empty string"),
        ('{"id": "b", "title": 3, "text": "x"}', "line 21: 'title' must be a string"),
        ('{"id": "b", "title": "t"}', "line 21: 'text' must be a string"),
        ('{"id": "a", "title": "t", "text": "x"}', "line 21: duplicate id 'a'"),
        # Beyond test_search.py's table: values the fast reader might have turned into strings.
        ('{"id": "b", "text": 5}', "line 21: 'text' must be a string"),
        ('{"id": 1.5, "text": "x"}', "line 21: 'id' must be a non-empty string"),
        ('{"id": true, "text": "x"}', "line 21: 'id' must be a non-empty string"),
        ('{"id": "b", "title": false, "text": "x"}', "line 21: 'title' must be a string"),
        ('{"id": "b", "text": null, "contents": null}', "line 21: 'text' must be a string"),
        ("null", "line 21: expected an object"),
    ],
    ids=[
        "not-json", "not-object", "no-id", "empty-id", "title-type", "no-text", "duplicate-id",
        "text-number", "float-id", "bool-id", "bool-title", "null-text-and-contents", "null-line",
    ],
)  # fmt: skip
def test_a_bad_line_after_good_ones_stops_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, message: str
) -> None:
    taken = spy_on_fast_reader(monkeypatch)
    corpus = write_corpus(tmp_path / "c.jsonl", GOOD)
    corpus.write_text(corpus.read_text() + line + "\n" + json.dumps({"id": "z", "text": "after"}) + "\n")
    with pytest.raises(CorpusError, match=message):
        build_index(corpus, tmp_path / "ix")
    assert taken == [False]  # pyarrow's reader saw the line first and handed the file on
    assert not (tmp_path / "ix" / MANIFEST).exists()


def test_a_line_that_is_not_utf8_is_an_error_naming_it(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", GOOD)
    corpus.write_bytes(corpus.read_bytes() + b'{"id": "b", "text": "x \xff y"}\n')
    with pytest.raises(CorpusError, match="line 21"):
        build_index(corpus, tmp_path / "ix")


def test_a_byte_order_mark_is_read_alike_by_both_readers(tmp_path: Path) -> None:
    outcomes = []
    for name, records in (("fast", GOOD), ("slow", [{"id": 1, "text": "integer id"}, *GOOD[1:]])):
        corpus = tmp_path / f"{name}.jsonl"
        corpus.write_bytes(b"\xef\xbb\xbf" + write_corpus(corpus, records).read_bytes())
        try:
            build_index(corpus, tmp_path / name)
            outcomes.append("built")
        except CorpusError:
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1]


# ---------------------------------------------------------------------------- 4. edge cases
def test_an_empty_corpus_builds_an_index_that_finds_nothing(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text("")
    assert build_index(tmp_path / "c.jsonl", tmp_path / "ix")["documents"] == 0
    for index in (SearchIndex.open(tmp_path / "ix"), SearchIndex.in_memory([])):
        assert index.documents == 0
        assert index.search("river", 5) == []


def test_no_words_no_hits_and_fewer_hits_than_asked(tmp_path: Path) -> None:
    records = [
        {"id": "empty", "title": "", "text": ""},
        {"id": "punctuation", "title": "—", "text": "?! “” … ."},
        {"id": "r2", "title": "", "text": "river river town"},
        {"id": "r1", "title": "River", "text": "a town"},
        {"id": "r3", "title": "", "text": "the river"},
    ]
    write_corpus(tmp_path / "c.jsonl", records)
    build_index(tmp_path / "c.jsonl", tmp_path / "ix")
    docs = [Document(**r) for r in records]
    for index in (SearchIndex.open(tmp_path / "ix"), SearchIndex.in_memory(docs)):
        assert index.documents == 5
        assert index.search("lantern unicorn", 3) == []  # words in no document
        for query in ("?!", "“—”", " \t\u00a0", ""):
            with pytest.raises(ValueError, match="no words"):
                index.search(query, 3)
        got = ranked_ids(index, "river", 10)
        assert sorted(got) == ["r1", "r2", "r3"]
        assert ranked_ids(index, "river", 2) == got[:2]


def test_thousands_of_ties_give_the_smallest_ids_in_order(tmp_path: Path) -> None:
    """5,000 documents score the same for "lantern" (two score higher): no cap on the tie-break."""
    rng = random.Random(3)
    ids = [f"t{rng.randrange(10**9):09d}-{i}" for i in range(5000)]
    records = [{"id": doc_id, "title": "", "text": "lantern"} for doc_id in ids]
    records += [
        {"id": "zz-best", "title": "lantern", "text": "lantern"},
        {"id": "zz-next", "title": "lantern", "text": "oil"},
    ]
    rng.shuffle(records)
    write_corpus(tmp_path / "c.jsonl", records)
    build_index(tmp_path / "c.jsonl", tmp_path / "ix", threads=2)
    in_id_order = sorted(ids)
    for index in (SearchIndex.open(tmp_path / "ix"), SearchIndex.in_memory(Document(**r) for r in records)):
        for top_k in (1, 3, 100, 4999, 5002, 6000):
            expected = ["zz-best", "zz-next", *in_id_order][:top_k]
            assert ranked_ids(index, "lantern", top_k) == expected, top_k


def test_an_old_tantivy_index_is_refused(tmp_path: Path) -> None:
    manifest = {"format": 1, "documents": 3, "corpus": "c.jsonl", "engine": "tantivy"}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CorpusError, match="rebuild the index"):
        SearchIndex.open(tmp_path)


# ---------------------------------------------------------------------------- 5. after a fork
def search_in_child(index: SearchIndex, queries: list[str], conn: Connection) -> None:
    try:
        conn.send([[d.to_dict() for d in index.search(query, 5)] for query in queries])
    finally:
        conn.close()


@pytest.mark.parametrize("searched_before_fork", [True, False], ids=["loaded", "lazy"])
def test_a_forked_process_searches_like_its_parent(tmp_path: Path, searched_before_fork: bool) -> None:
    """The service opens the index and forks its scoring processes; a child answers as the parent does,
    whether the parent had already mapped the files or the child maps them itself."""
    records = chunk_corpus()
    write_corpus(tmp_path / "c.jsonl", records)
    build_index(tmp_path / "c.jsonl", tmp_path / "ix")
    queries = ["river town", "café naïve", "東京", "runs"]
    index = SearchIndex.open(tmp_path / "ix")
    if searched_before_fork:
        assert index.search("river", 1)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=search_in_child, args=(index, queries, sender))
    child.start()
    sender.close()  # the child holds the only sending end: a child that dies makes recv() raise EOFError
    try:
        assert receiver.poll(600), "the child answered nothing in 10 minutes"  # a hang guard, not a deadline
        from_child = receiver.recv()
        child.join()
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == 0
    from_parent = [[d.to_dict() for d in index.search(query, 5)] for query in queries]
    assert from_child == from_parent
    assert all(from_parent)
