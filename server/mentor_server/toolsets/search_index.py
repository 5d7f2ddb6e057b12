"""The embedded search index behind the `search` tool: BM25 over a JSONL corpus, built column-wise.

The corpus and its two readers are in search_corpus.py (its names are exported here too: this
module is the index's public face).

Why this engine. The build is the slow part of an index (the issue asks 50,000 documents/s on a
2-core machine), and per-word Python work cannot reach it: 6 million words at 100 ns each is
already over half the budget. So the build never touches a word in Python:

- pyarrow reads the JSONL (its C++ reader, on several threads) and the corpus is checked with
  column operations (search_corpus.py);
- the words: one byte table lower-cases ASCII letters and blanks every other ASCII character that
  is not a word character (numpy), pyarrow splits on the blanks and dictionary-encodes the words
  of a chunk of documents (C++), and only each chunk's *distinct* words reach Python, where they
  are stemmed (PyStemmer's Snowball English, in C) and given global term ids;
- numpy sorts each chunk's (term, document) pairs, places them in posting lists by counting (no
  global sort) and precomputes each posting's BM25 weight.

Chunks are analysed on `threads` threads (pyarrow and numpy release the GIL); their size is fixed,
so every thread count builds byte-identical files. tantivy (Rust) and bm25s were measured first:
tantivy's best case here was 26,610 documents per CPU second with nothing stored, bm25s's Python
tokenizer 6,742 (bench/RESULTS.md "Issue 13" as of commit 231bac4). The current bench,
`bench/bench_search.py`, builds all three from one corpus.

The words of a text, for documents and queries alike (`words`): maximal runs of word characters
(`\\w`, Unicode) of the case-folded text. ASCII runs are found by the byte table; a run holding
non-ASCII bytes (accents, CJK, Unicode punctuation) is split by Python's `\\w+` after
`str.casefold()`. Queries run through the same two steps, so a query word and an indexed word
always agree.

Scoring: BM25 (k1 1.2, b 0.75, idf ln(1 + (N - df + 0.5) / (df + 0.5))) over title and text, each
field with its own lengths, title matches counting double; a query's distinct terms are summed.
Hits are ordered by score, then by document id (exactly, however many documents tie), so a fixed
index answers a query the same way every time.

On disk (`build_index`): `mentor_search.json` (the manifest, written last, which `SearchIndex.open`
requires), `terms.txt` (one term a line; the line number is the term id), per field
`{field}.indptr.npy` / `{field}.docs.npy` / `{field}.weights.npy` (CSR posting lists), `id_rank.npy`
(each document's place in id order, for ties) and `documents.arrow` (id, title, text; Arrow IPC).
Everything is memory-mapped on the first search, in the process that searches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import search_corpus
from .search_corpus import (
    CorpusError,
    Document,
    document_columns,
    document_from_json,
    integers,
    read_corpus,
    require_engine,
)

__all__ = [
    "MANIFEST",
    "CorpusError",
    "Document",
    "SearchIndex",
    "build_index",
    "document_from_json",
    "query_words",
    "read_corpus",
    "require_engine",
    "words",
]

MANIFEST = "mentor_search.json"
"""The file that marks a folder as a search index built here (format, document count, corpus hash)."""

_FORMAT = 2  # 1 was a tantivy index: `open` refuses it with "rebuild the index"
_MAX_QUERY_CHARS = 1000
_K1, _B = 1.2, 0.75
_FIELDS = (("title", 2.0), ("text", 1.0))  # field, boost: a title match counts double
_CHUNK_DOCS = 16384  # documents analysed together; fixed, so any thread count builds the same files
_WORD_RUN = re.compile(r"\w+")


def _byte_table() -> bytes:
    """Byte → byte: ASCII letters lower-cased, digits, `_` and non-ASCII bytes kept, the rest blank."""
    table = bytearray(range(256))
    for code in range(128):
        char = chr(code)
        table[code] = ord(char.lower()) if char.isalnum() or char == "_" else ord(" ")
    return bytes(table)


_BYTE_TABLE = _byte_table()


# ---------------------------------------------------------------------------- words and terms
def _run_words(run: str) -> list[str]:
    """The words of one blank-free run: itself when ASCII (the byte table lower-cased it), else `\\w+`
    over its case-folded text (non-ASCII letters, and non-ASCII punctuation that separates words).
    Case folding, not `lower()`: it is the same for a letter wherever it stands (Σ is σ, not ς at a
    word's end) and matches "STRASSE" to "straße"; for ASCII the two agree."""
    return [run] if run.isascii() and run else _WORD_RUN.findall(run.casefold())


def words(text: str) -> list[str]:
    """The words of a text as the index sees them: `re.findall(r"\\w+", text.casefold())`, computed
    so that documents never become Python strings word by word (see `_analyse`)."""
    runs = text.encode("utf-8", "replace").translate(_BYTE_TABLE).split()
    return [word for run in runs for word in _run_words(run.decode("utf-8"))]


def query_words(query: str) -> str:
    """The query as the index sees it: its words, case-folded, separated by spaces."""
    return " ".join(words(query))


class _Terms:
    """Stemmed terms and their ids, in order of first appearance (one per build or open index)."""

    def __init__(self, stemmer_module: Any, terms: Sequence[str] = ()) -> None:
        self._stemmer = stemmer_module.Stemmer("english")
        self.ids: dict[str, int] = {term: i for i, term in enumerate(terms)}
        # Build side: every distinct run seen so far (a pyarrow array), the term id of each
        # (-1 for a run of several words, or none, whose ids are in _multi).
        self._runs: Any = None
        self._run_term: Any = None
        self._multi: dict[int, tuple[int, ...]] = {}

    def _add(self, new: Any) -> None:
        """Stem runs not seen before and give their words term ids."""
        np, pa, _, _ = require_engine()
        split = [_run_words(run) for run in new.to_pylist()]
        setdefault, ids = self.ids.setdefault, self.ids
        term_ids = [setdefault(stem, len(ids)) for stem in self._stemmer.stemWords([w for ws in split for w in ws])]
        base = 0 if self._run_term is None else len(self._run_term)
        if all(len(ws) == 1 for ws in split):
            run_term = np.array(term_ids, np.int64)
        else:
            run_term = np.full(len(split), -1, np.int64)
            at = 0
            for i, ws in enumerate(split):
                if len(ws) == 1:
                    run_term[i] = term_ids[at]
                else:
                    self._multi[base + i] = tuple(term_ids[at : at + len(ws)])
                at += len(ws)
        new = new.cast(pa.large_string())
        self._runs = new if self._runs is None else pa.concat_arrays([self._runs, new])
        self._run_term = run_term if self._run_term is None else np.concatenate((self._run_term, run_term))

    def of_runs(self, runs: Any) -> tuple[Any, dict[int, tuple[int, ...]]]:
        """A chunk's distinct runs (a pyarrow array) → each run's term id (-1: see the dict, which
        maps such a run's position to the ids of its words). New terms are added (build side)."""
        np, _, pc, _ = require_engine()
        known = 0 if self._run_term is None else len(self._run_term)
        if self._runs is None:
            where = np.arange(len(runs), dtype=np.int64)
            self._add(runs)
        else:
            found = pc.index_in(runs, value_set=self._runs)  # hashing in C++: no run becomes a str
            where = integers(found).astype(np.int64)  # a new run's slot holds no index yet
            if found.null_count:
                new = pc.is_null(found)
                self._add(pc.filter(runs, new))  # appended in order: the k-th new run gets known + k
                where[integers(pc.indices_nonzero(new))] = np.arange(known, known + found.null_count)
        run_term = self._run_term[where]
        multi = {int(i): self._multi[int(where[i])] for i in np.flatnonzero(run_term < 0)}
        return run_term, multi

    def lookup(self, found_words: list[str]) -> list[int]:
        """The distinct known term ids of a query's words (`words(query)`), in id order (search side)."""
        found = (self.ids.get(stem) for stem in self._stemmer.stemWords(found_words))
        return sorted({term for term in found if term is not None})


# ---------------------------------------------------------------------------- building
@dataclass
class _Postings:
    """One field's posting lists: documents of term t are docs[indptr[t]:indptr[t + 1]], ascending."""

    indptr: Any
    docs: Any
    weights: Any


@dataclass
class _Chunk:
    """One chunk of one field: its (term, document, term frequency) triples sorted by term, then
    document, and its documents' lengths in terms."""

    first: int
    terms: Any
    docs: Any
    tf: Any
    lengths: Any


def _analyse(column: Any) -> tuple[Any, Any, Any]:
    """A chunk's column of texts → (runs per document, the distinct runs, each run's index into them).
    In C++ (pyarrow) and C (`bytes.translate`): only the distinct runs are ever Python objects."""
    np, pa, pc, _ = require_engine()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    large = column.type == pa.large_string()
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64 if large else np.int32)
    offsets = offsets[column.offset : column.offset + len(column) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    blanked = memoryview(data_buffer)[start:end].tobytes().translate(_BYTE_TABLE) if end > start else b""
    texts = pa.Array.from_buffers(
        column.type, len(column), [None, pa.py_buffer(offsets - offsets.dtype.type(start)), pa.py_buffer(blanked)]
    )
    runs = pc.ascii_split_whitespace(texts)
    encoded = pc.dictionary_encode(pc.list_flatten(runs))
    counts = integers(pc.list_value_length(runs)).astype(np.int64)
    return counts, encoded.dictionary, integers(encoded.indices)


def _pairs(first: int, counts: Any, run_index: Any, run_term: Any, multi: dict[int, tuple[int, ...]]) -> _Chunk:
    """One chunk's occurrences → its sorted (term, document, term frequency) triples."""
    np, _, _, _ = require_engine()
    docs = np.repeat(np.arange(first, first + len(counts), dtype=np.int64), counts)
    if not multi:
        terms = run_term[run_index]
    elif not any(multi.values()):  # only runs of no word: the empty runs a split leaves at a blank end
        terms = run_term[run_index]
        keep = terms >= 0
        terms, docs = terms[keep], docs[keep]
    else:  # a run of several words (or none): one occurrence per word
        widths = np.ones(len(run_term), np.int64)
        for position, ids in multi.items():
            widths[position] = len(ids)
        starts = np.cumsum(widths) - widths
        flat = np.empty(int(widths.sum()), np.int64)
        single = run_term >= 0
        flat[starts[single]] = run_term[single]
        for position, ids in multi.items():
            flat[starts[position] : starts[position] + len(ids)] = ids
        each = widths[run_index]
        docs = np.repeat(docs, each)
        within = np.arange(len(docs)) - np.repeat(np.cumsum(each) - each, each)
        terms = flat[np.repeat(starts[run_index], each) + within]
    lengths = np.bincount(docs - first, minlength=len(counts))
    keys = terms << 32  # a new array: run_term is not touched
    keys |= docs
    keys.sort()
    change = np.empty(len(keys), bool)
    change[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=change[1:])
    heads = np.flatnonzero(change)
    tf = np.diff(np.append(heads, len(keys)))
    unique = keys[heads]
    return _Chunk(first, unique >> 32, (unique & 0xFFFFFFFF).astype(np.int32), tf, lengths)


def _weights(chunk: _Chunk, idf: Any, mean_length: float, boost: float) -> Any:
    """BM25 weight of each of a chunk's triples (float32)."""
    np, _, _, _ = require_engine()
    tf = chunk.tf.astype(np.float32)
    lengths = chunk.lengths.astype(np.float32)[chunk.docs - chunk.first]
    norm = np.float32(_K1) * (np.float32(1 - _B) + np.float32(_B / mean_length) * lengths)
    return (np.float32(boost * (_K1 + 1)) * idf[chunk.terms]) * tf / (tf + norm)


def _postings(pool: ThreadPoolExecutor, chunks: list[_Chunk], n_terms: int, n_docs: int, boost: float) -> _Postings:
    """A field's chunks (in document order) → CSR posting lists with BM25 weights. Each chunk
    writes its triples straight to their places (a counting sort, no global sort), in the pool."""
    np, _, _, _ = require_engine()
    per_chunk = [np.bincount(c.terms, minlength=n_terms) for c in chunks]
    df = np.sum(per_chunk, axis=0) if chunks else np.zeros(n_terms, np.int64)
    indptr = np.concatenate(([0], np.cumsum(df))).astype(np.int64)
    total_length = sum(int(c.lengths.sum()) for c in chunks)
    mean_length = total_length / n_docs if total_length else 1.0
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    docs = np.empty(int(indptr[-1]), np.int32)
    weights = np.empty(int(indptr[-1]), np.float32)
    offset = indptr[:-1].copy()  # where the next chunk's postings of each term go

    def place(chunk: _Chunk, at: Any, counts: Any) -> None:
        rank = np.arange(len(chunk.terms)) - (np.cumsum(counts) - counts)[chunk.terms]
        where = at[chunk.terms] + rank
        docs[where] = chunk.docs
        weights[where] = _weights(chunk, idf, mean_length, boost)

    jobs = []
    for chunk, counts in zip(chunks, per_chunk, strict=True):
        jobs.append(pool.submit(place, chunk, offset.copy(), counts))
        offset += counts
    for job in jobs:
        job.result()
    return _Postings(indptr, docs, weights)


@dataclass
class _Index:
    """Everything a search reads: terms, the fields' posting lists, the documents, and the id order."""

    terms: _Terms
    fields: list[_Postings]
    id_rank: Any
    documents: Any  # a pyarrow Table: id, title, text
    size: int


def _build(documents: Any, threads: int) -> _Index:
    """The index of a pyarrow table of documents (id, title, text: strings, no nulls, ids unique)."""
    np, _, pc, stemmer = require_engine()
    n_docs = documents.num_rows
    terms = _Terms(stemmer)
    columns = {name: documents.column(name) for name, _ in _FIELDS}
    jobs = [(name, first) for first in range(0, n_docs, _CHUNK_DOCS) for name, _ in _FIELDS]
    chunks: dict[str, list[_Chunk]] = {name: [] for name, _ in _FIELDS}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        analysed = pool.map(lambda job: _analyse(columns[job[0]].slice(job[1], _CHUNK_DOCS)), jobs)
        pending = []
        for (name, first), (counts, runs, run_index) in zip(jobs, analysed, strict=True):
            run_term, multi = terms.of_runs(runs)  # in chunk order: term ids never depend on threads
            pending.append((name, pool.submit(_pairs, first, counts, run_index, run_term, multi)))
        for name, future in pending:
            chunks[name].append(future.result())
        fields = [_postings(pool, chunks[name], len(terms.ids), n_docs, boost) for name, boost in _FIELDS]
    id_rank = np.empty(n_docs, np.int32)
    id_rank[integers(pc.sort_indices(documents.column("id")))] = np.arange(n_docs, dtype=np.int32)
    return _Index(terms, fields, id_rank, documents, n_docs)


def _documents_table(columns: tuple[Any, Any, Any]) -> Any:
    _, pa, _, _ = require_engine()
    return pa.Table.from_arrays(list(columns), names=["id", "title", "text"])


def _write_documents(path: Path, documents: Any) -> None:
    _, pa, _, _ = require_engine()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, documents.schema) as writer:
        writer.write_table(documents)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 22):
            digest.update(block)  # hashlib lets go of the GIL here: this runs beside the reading
    return digest.hexdigest()


def _default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def build_index(corpus: str | Path, out: str | Path, *, threads: int | None = None) -> dict[str, Any]:
    """Index a JSONL corpus into the folder `out` (created; it must be empty or absent).

    Returns the manifest written next to the index: `{"format", "documents", "corpus",
    "corpus_sha256", "engine", "bm25"}`. `threads` defaults to the cores available, at most 4;
    the files do not depend on it.
    """
    np, pa, _, stemmer = require_engine()
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise CorpusError(f"{folder}: the output folder is not empty (choose a new folder)")
    threads = threads or _default_threads()
    corpus = Path(corpus)
    # Beside the build: hashing the corpus, then writing the documents once they are read and checked.
    with ThreadPoolExecutor(max_workers=2) as beside:
        sha256 = beside.submit(_file_sha256, corpus)
        documents = _documents_table(
            search_corpus.read_columns(corpus, threads) or document_columns(read_corpus(corpus))
        )
        folder.mkdir(parents=True, exist_ok=True)
        written = beside.submit(_write_documents, folder / "documents.arrow", documents)
        index = _build(documents, threads=threads)
        (folder / "terms.txt").write_text("".join(term + "\n" for term in index.terms.ids), encoding="utf-8")
        for (name, _), postings in zip(_FIELDS, index.fields, strict=True):
            for part in ("indptr", "docs", "weights"):
                np.save(folder / f"{name}.{part}.npy", getattr(postings, part))
        np.save(folder / "id_rank.npy", index.id_rank)
        written.result()
        manifest = {
            "format": _FORMAT,
            "documents": index.size,
            "corpus": str(corpus),
            "corpus_sha256": sha256.result(),
            "engine": f"mentor-bm25 (pyarrow {pa.__version__}, numpy {np.__version__}, PyStemmer {stemmer.version()})",
            "bm25": {"k1": _K1, "b": _B, "boosts": dict(_FIELDS)},
        }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _load(folder: Path) -> _Index:
    np, pa, _, stemmer = require_engine()
    terms = (folder / "terms.txt").read_text(encoding="utf-8").split("\n")[:-1]
    fields = [
        _Postings(*(np.load(folder / f"{name}.{part}.npy", mmap_mode="r") for part in ("indptr", "docs", "weights")))
        for name, _ in _FIELDS
    ]
    documents = pa.ipc.open_file(pa.memory_map(str(folder / "documents.arrow"))).read_all()
    id_rank = np.load(folder / "id_rank.npy", mmap_mode="r")
    return _Index(_Terms(stemmer, terms), fields, id_rank, documents, documents.num_rows)


# ---------------------------------------------------------------------------- searching
class SearchIndex:
    """A read-only BM25 index: `SearchIndex.open(folder)` for a built one, `in_memory(docs)` for tests
    and generated corpora. `search(query, top_k)` returns Documents, best first."""

    def __init__(self, index: _Index | None, documents: int, source: str, folder: Path | None = None) -> None:
        self._index = index
        self._folder = folder
        self.documents = documents
        self.source = source
        self._lock = threading.Lock()

    @classmethod
    def open(cls, folder: str | Path) -> SearchIndex:
        """An index that `build_index` wrote; a folder without our manifest is a CorpusError.

        Only the manifest is read here; the files are memory-mapped on the first search, in the
        process that searches (the service's scoring processes are forked from the one that opens).
        """
        require_engine()
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
        """An index held in memory: the same build as `build_index`, without the files."""
        index = _build(_documents_table(document_columns(documents)), threads=1)
        return cls(index, index.size, source)

    def __repr__(self) -> str:
        return f"SearchIndex(source={self.source!r}, documents={self.documents})"

    def _current(self) -> _Index:
        with self._lock:
            if self._index is None:
                assert self._folder is not None
                self._index = _load(self._folder)
            return self._index

    def search(self, query: str, top_k: int) -> list[Document]:
        """The `top_k` best documents for `query`; ValueError for a query with no words to search."""
        if len(query) > _MAX_QUERY_CHARS:
            raise ValueError(f"the query is longer than {_MAX_QUERY_CHARS} characters")
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        found = words(query)
        if not found:
            raise ValueError("the query has no words to search for")
        np, _, _, _ = require_engine()
        index = self._current()
        with self._lock:  # a PyStemmer stemmer is not safe to share between threads
            terms = index.terms.lookup(found)
        if not terms:
            return []  # no word of the query is in any document
        docs, weights = [], []
        for field in index.fields:
            for term in terms:
                start, end = int(field.indptr[term]), int(field.indptr[term + 1])
                docs.append(field.docs[start:end])
                weights.append(field.weights[start:end])
        # Sums in a fixed order (fields, then terms by id): a fixed index scores a query the same way.
        scores = np.bincount(np.concatenate(docs), weights=np.concatenate(weights), minlength=index.size)
        hits = np.flatnonzero(scores > 0)  # every weight is positive: a score of 0 matched nothing
        if len(hits) > top_k:  # keep every document that ties with the k-th best, then order by id
            kth = np.partition(scores[hits], len(hits) - top_k)[len(hits) - top_k]
            hits = hits[scores[hits] >= kth]
        rows = hits[np.lexsort((index.id_rank[hits], -scores[hits]))][:top_k]
        # Row by row: `Table.take` would first join a column's chunks (tens of MB) on every search.
        columns = [index.documents.column(name) for name in ("id", "title", "text")]
        return [Document(*(column[int(row)].as_py() for column in columns)) for row in rows]
