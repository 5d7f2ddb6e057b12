"""The `search` index's corpus: JSONL documents, checked, and read into pyarrow columns.

A corpus is JSONL, one document a line: `{"id", "title", "text"}` (FlashRAG's wiki dumps,
`{"id", "contents"}` with the title as the first line of `contents`, are read too). A null field
counts as absent. A bad line (not UTF-8, not JSON, not a document, a repeated id) is an error
naming its line number, never a skipped document.

Two readers, one answer. `read_columns` hands the file to pyarrow's JSON reader (C++, several
threads) and checks the columns as a whole; whatever it does not take (an integer id, a field of
another type, any bad line) it leaves to `read_corpus`, which goes line by line, names the first
bad line, or returns documents that `document_columns` turns into columns. The index is built from
columns either way (search_index.py).

pyarrow imports pandas (about half a second) the first time it converts a Python value: a scalar
argument to a compute function, `pa.array`, `pa.table`, `Array.to_numpy`. The helpers here
(`strings`, `integers`) build and read arrays through their buffers instead, so a build and a
search never import pandas.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CorpusError",
    "Document",
    "document_columns",
    "document_from_json",
    "integers",
    "read_columns",
    "read_corpus",
    "require_engine",
    "strings",
]


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


def require_engine() -> tuple[Any, Any, Any, Any]:
    """numpy, pyarrow, pyarrow.compute and PyStemmer's module: the `search` extra, imported on first
    use (the `search` tool over a remote retriever needs none of them); ImportError names the extra."""
    try:
        import numpy
        import pyarrow
        import pyarrow.compute
        import pyarrow.json
        import Stemmer
    except ImportError as exc:  # the optional extra is missing: say how to get it
        raise ImportError(
            "the embedded search index needs pyarrow, numpy and PyStemmer: pip install 'mentor-reward[search]'"
        ) from exc
    return numpy, pyarrow, pyarrow.compute, Stemmer


def _split_contents(contents: str) -> tuple[str, str]:
    """FlashRAG's `contents`: the title (in double quotes) on the first line, the text after it.
    Contents of one line are all text."""
    title, newline, text = contents.partition("\n")
    if not newline:
        return "", contents.strip()
    return title.strip().strip('"'), text.strip()


def document_from_json(data: Any, where: str) -> Document:
    """Check one corpus record and return it as a Document; `where` names it in errors.

    A null `title` or `text` counts as absent (columnar writers fill missing keys with null)."""
    if not isinstance(data, dict):
        raise CorpusError(f"{where}: expected an object with id, title and text, got {type(data).__name__}")
    doc_id = data.get("id")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id:
        raise CorpusError(f"{where}: 'id' must be a non-empty string (or an integer), got {doc_id!r}")
    title: Any
    text: Any
    if data.get("text") is None and isinstance(data.get("contents"), str):
        title, text = _split_contents(data["contents"])
    else:
        title = "" if data.get("title") is None else data["title"]
        text = data.get("text")
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
    with Path(path).open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            where = f"{path} line {number}"
            try:  # a byte order mark opens the file, as pyarrow's reader also accepts
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise CorpusError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise CorpusError(f"{where}: not JSON ({exc})") from None
            doc = document_from_json(data, where)
            if doc.id in seen:
                raise CorpusError(f"{where}: duplicate id {doc.id!r}")
            seen.add(doc.id)
            yield doc


def read_columns(path: Path, threads: int) -> tuple[Any, Any, Any] | None:
    """(ids, titles, texts) as pyarrow string arrays without nulls, read by pyarrow's JSON reader;
    None when the file needs `read_corpus` (a line it does not take, or one that is wrong)."""
    _, pa, pc, _ = require_engine()
    pj = pa.json

    fields = ("id", "title", "text", "contents")
    schema = pa.schema([(name, pa.string()) for name in fields])
    try:
        table = pj.read_json(
            str(path),
            read_options=pj.ReadOptions(use_threads=threads > 1, block_size=8 << 20),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # not JSON, not an object, an integer id, a field of another type, an empty file
    try:
        table.validate(full=True)  # the reader does not check UTF-8; read_corpus names a line that is not
    except pa.ArrowInvalid:
        return None
    ids, titles, contents = (table.column(name).combine_chunks() for name in ("id", "title", "contents"))
    texts = table.column("text")  # left in its chunks: each chunk of documents is joined where it is analysed
    # No Python value reaches pyarrow here (no scalars, `pa.array` or `pa.table`): converting one makes
    # pyarrow import pandas, half a second of a 100,000-document build.
    if ids.null_count or (len(ids) and pc.min(pc.binary_length(ids)).as_py() == 0):
        return None
    if pc.count_distinct(ids).as_py() != len(ids):
        return None
    titles = pc.coalesce(titles, _empty_strings(len(titles))) if titles.null_count else titles
    if texts.null_count:
        texts = texts.combine_chunks()
        from_contents = pc.is_null(texts)
        if pc.any(pc.and_(from_contents, pc.is_null(contents))).as_py():
            return None  # a line with neither text nor contents: read_corpus names it
        rows = pc.indices_nonzero(from_contents)
        split = [_split_contents(c) for c in pc.take(contents, rows).to_pylist()]
        texts = pc.replace_with_mask(texts, from_contents, strings([t for _, t in split], texts.type))
        titles = pc.replace_with_mask(titles, from_contents, strings([t for t, _ in split], titles.type))
    return ids, titles, texts


def _empty_strings(n: int) -> Any:
    np, pa, _, _ = require_engine()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(np.zeros(n + 1, np.int32)), pa.py_buffer(b"")])


def integers(array: Any) -> Any:
    """A pyarrow integer array as a numpy view of its values (`to_numpy` can make pyarrow import
    pandas); a null's slot holds an unspecified value."""
    np, pa, _, _ = require_engine()
    dtype = np.dtype(f"{'u' if pa.types.is_unsigned_integer(array.type) else 'i'}{array.type.bit_width // 8}")
    return np.frombuffer(array.buffers()[1], dtype, len(array), array.offset * dtype.itemsize)


def strings(values: list[str], kind: Any = None) -> Any:
    """A pyarrow string array of `values`, built from its buffers (`pa.array` would import pandas).
    A lone surrogate (JSON allows "\\ud800") is stored as "?", as `words` reads it. `kind`: string
    or large_string; by default whichever the size allows."""
    np, pa, _, _ = require_engine()
    encoded = [value.encode("utf-8", "replace") for value in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    kind = kind or (pa.string() if offsets[-1] < 2**31 else pa.large_string())
    offsets = offsets.astype(np.int64 if kind == pa.large_string() else np.int32)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def document_columns(documents: Iterable[Document]) -> tuple[Any, Any, Any]:
    """(ids, titles, texts) of documents already read and checked, as pyarrow string arrays."""
    docs = list(documents)
    return tuple(strings([getattr(d, name) for d in docs]) for name in ("id", "title", "text"))
