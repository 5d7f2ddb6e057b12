"""The embedded search index behind the `search` tool: BM25 over a JSONL corpus, with tantivy.

A corpus is JSONL, one document a line: `{"id", "title", "text"}` (FlashRAG's wiki dumps,
`{"id", "contents"}` with the title as the first line of `contents`, are read too). `build_index`
checks every line (a bad one is an error naming its line number, not a skipped document) and
writes a tantivy index plus `mentor_search.json`, a manifest that lets `SearchIndex.open` refuse
a folder that is not one of ours. Tantivy was measured against bm25s on the same generated corpus
(bench/bench_search.py, bench/RESULTS.md): its Rust indexer builds several times faster per CPU
second, and both answer well within the latency target.

Searching is deterministic for a fixed index: the query is reduced to plain lower-case words
(no query-language operators, so a model's quote, colon or `AND` is never syntax), scored with
BM25 over title and text (title matches count double), and hits are ordered by score, then by
document id, so documents with equal scores come back in the same order whatever the segment
layout (up to 4,096 documents tied at the cut; beyond that, in index order). The tantivy index
is opened lazily and again after a fork: the service's scoring processes are forked from the
process that registered the toolset, and each needs its own reader.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "CorpusError", "Document", "SearchIndex", "build_index", "read_corpus"]

MANIFEST = "mentor_search.json"
"""The file that marks a folder as a search index built here (format, document count, corpus hash)."""

_FORMAT = 1
_MAX_QUERY_CHARS = 1000
_QUERY_WORD = re.compile(r"\w+")
_TITLE_BOOST = 2.0
_EXTRA_HITS = 1  # one hit past top_k shows whether documents tie at the cut (more costs pruning)
_MAX_TIES = 4096


class CorpusError(ValueError):
    """A corpus line that is not a document, or a folder that is not an index; the message names it."""


@dataclass(frozen=True, slots=True)
class Document:
    """One retrieved document as the tool returns it (ranked: the best first)."""

    id: str
    title: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "text": self.text}


def _require_tantivy() -> Any:
    try:
        import tantivy
    except ImportError as exc:  # the optional extra is missing: say how to get it
        raise ImportError("the embedded search index needs tantivy: pip install 'mentor-reward[search]'") from exc
    return tantivy


# ---------------------------------------------------------------------------- the corpus
def _split_contents(contents: str) -> tuple[str, str]:
    """FlashRAG's `contents`: the title (in double quotes) on the first line, the text after it.
    Contents of one line are all text."""
    title, newline, text = contents.partition("\n")
    if not newline:
        return "", contents.strip()
    return title.strip().strip('"'), text.strip()


def document_from_json(data: Any, where: str) -> Document:
    """Check one corpus record and return it as a Document; `where` names it in errors."""
    if not isinstance(data, dict):
        raise CorpusError(f"{where}: expected an object with id, title and text, got {type(data).__name__}")
    doc_id = data.get("id")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id:
        raise CorpusError(f"{where}: 'id' must be a non-empty string (or an integer), got {doc_id!r}")
    title: Any
    text: Any
    if "text" not in data and isinstance(data.get("contents"), str):
        title, text = _split_contents(data["contents"])
    else:
        title, text = data.get("title", ""), data.get("text")
    if not isinstance(title, str):
        raise CorpusError(f"{where}: 'title' must be a string, got {type(title).__name__}")
    if not isinstance(text, str):
        raise CorpusError(
            f"{where}: 'text' must be a string (or give FlashRAG's 'contents'), got {type(text).__name__}"
        )
    return Document(doc_id, title, text)


def read_corpus(path: str | Path) -> Iterator[Document]:
    """The documents of a JSONL corpus, in file order; blank lines are skipped.

    Raises CorpusError naming the line for a line that is not JSON, not a document, or repeats
    an earlier id (two documents with one id would make results ambiguous).
    """
    seen: set[str] = set()
    with Path(path).open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise CorpusError(f"{where}: not JSON ({exc})") from None
            doc = document_from_json(data, where)
            if doc.id in seen:
                raise CorpusError(f"{where}: duplicate id {doc.id!r}")
            seen.add(doc.id)
            yield doc


# ---------------------------------------------------------------------------- the index
def _schema(tantivy: Any) -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    # English stemming: "founded" in a question finds "founding" in a document.
    builder.add_text_field("title", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("text", stored=True, tokenizer_name="en_stem")
    return builder.build()


def _index_documents(tantivy: Any, index: Any, documents: Iterable[Document], threads: int) -> int:
    writer = index.writer(heap_size=max(64, 32 * threads) * 1_000_000, num_threads=threads)
    count = 0
    for doc in documents:
        writer.add_document(tantivy.Document(id=doc.id, title=doc.title, text=doc.text))
        count += 1
    writer.commit()
    writer.wait_merging_threads()
    return count


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def build_index(corpus: str | Path, out: str | Path, *, threads: int | None = None) -> dict[str, Any]:
    """Index a JSONL corpus into the folder `out` (created; it must be empty or absent).

    Returns the manifest written next to the index: `{"format", "documents", "corpus",
    "corpus_sha256", "engine"}`. `threads` defaults to the cores available, at most 4.
    """
    tantivy = _require_tantivy()
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise CorpusError(f"{folder}: the output folder is not empty (choose a new folder)")
    folder.mkdir(parents=True, exist_ok=True)
    threads = threads or max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
    index = tantivy.Index(_schema(tantivy), path=str(folder))
    count = _index_documents(tantivy, index, read_corpus(corpus), threads)
    manifest = {
        "format": _FORMAT,
        "documents": count,
        "corpus": str(corpus),
        "corpus_sha256": _file_sha256(Path(corpus)),
        "engine": f"tantivy {getattr(tantivy, '__version__', '')}".strip(),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def query_words(query: str) -> str:
    """The query as the index sees it: its words, lower-cased, separated by spaces."""
    return " ".join(_QUERY_WORD.findall(query.lower()))


class SearchIndex:
    """A read-only BM25 index: `SearchIndex.open(folder)` for a built one, `in_memory(docs)` for tests
    and generated corpora. `search(query, top_k)` returns Documents, best first."""

    def __init__(self, index: Any, documents: int, source: str, folder: Path | None = None) -> None:
        self._index = index
        self._folder = folder
        self.documents = documents
        self.source = source
        self._lock = threading.Lock()
        self._searcher: Any = None
        self._pid = os.getpid()

    @classmethod
    def open(cls, folder: str | Path) -> SearchIndex:
        """An index that `build_index` wrote; a folder without our manifest is a CorpusError.

        Only the manifest is read here; tantivy opens the index on the first search, in the
        process that searches (a tantivy reader does not survive a fork).
        """
        _require_tantivy()
        path = Path(folder)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorpusError(
                f"{path}: not a search index (no readable {MANIFEST}; build one with `mentor-reward index build`)"
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise CorpusError(f"{path}: index format {found!r} is not {_FORMAT}; rebuild the index")
        return cls(None, int(manifest.get("documents", 0)), str(path), folder=path)

    @classmethod
    def in_memory(cls, documents: Iterable[Document], source: str = "<memory>") -> SearchIndex:
        """An index held in memory (one indexing thread, so the build is reproducible)."""
        tantivy = _require_tantivy()
        index = tantivy.Index(_schema(tantivy))
        count = _index_documents(tantivy, index, documents, threads=1)
        index.reload()
        return cls(index, count, source)

    def __repr__(self) -> str:
        return f"SearchIndex(source={self.source!r}, documents={self.documents})"

    def _current(self) -> tuple[Any, Any]:
        with self._lock:
            if self._folder is not None and (self._index is None or self._pid != os.getpid()):
                self._index = _require_tantivy().Index.open(str(self._folder))
                self._searcher = None
            if self._searcher is None or self._pid != os.getpid():
                self._searcher = self._index.searcher()
                self._pid = os.getpid()
            return self._index, self._searcher

    def search(self, query: str, top_k: int) -> list[Document]:
        """The `top_k` best documents for `query`; ValueError for a query with no words to search."""
        if len(query) > _MAX_QUERY_CHARS:
            raise ValueError(f"the query is longer than {_MAX_QUERY_CHARS} characters")
        words = query_words(query)
        if not words:
            raise ValueError("the query has no words to search for")
        index, searcher = self._current()
        parsed = index.parse_query(words, ["title", "text"], field_boosts={"title": _TITLE_BOOST})
        # Documents that tie with the k-th best at the cut must all be seen to pick by id, so the
        # window grows while its last hit still ties (up to _MAX_TIES; past that, index order).
        limit = top_k + _EXTRA_HITS
        while True:
            hits = searcher.search(parsed, limit).hits
            if len(hits) < limit or limit >= _MAX_TIES or hits[-1][0] < hits[top_k - 1][0]:
                break
            limit = min(limit * 4, _MAX_TIES)
        cut = hits[top_k - 1][0] if len(hits) >= top_k else float("-inf")
        found = []
        for score, address in hits:
            if score < cut:
                break
            stored = searcher.doc(address)
            found.append((-score, stored["id"][0], stored["title"][0], stored["text"][0]))
        found.sort()
        return [Document(doc_id, title, text) for _, doc_id, title, text in found[:top_k]]
