"""Search index build rate and query latency: tantivy (the `search` toolset's engine) against bm25s.

A corpus of N generated documents (default 100,000) is written as JSONL `{"id", "title", "text"}`.
Each document is a paragraph of W words (default 60) drawn from a Zipf-distributed vocabulary of
made-up words (50,000 of them), the shape of an encyclopedia passage without any real text.
Both libraries index the same file and answer the same queries (4 to 6 words taken from a random
document, plus a misspelt or absent word now and then), in one process, one after the other:

- tantivy, through the toolset's own `build_index` (reading and checking every line included)
  and `SearchIndex.search` (query clean-up, BM25 over title and text, ordering by score then id);
- bm25s (pure Python + NumPy): reading the JSONL, `bm25s.tokenize` and `BM25.index`; queries with
  `bm25s.tokenize` + `retrieve(k)` on one thread.

For tantivy the build's CPU time is also split: reading and checking the lines, making tantivy
documents, and (for contrast) tantivy alone on the raw lines with its default tokenizer, and with
nothing stored, no positions and no stemming (a ceiling on any tantivy build here).

Build rates are documents per wall-clock second and per CPU second of this process (threads
included); search is timed per query (p50, p95 of wall time) and as the mean CPU time per query
over a second pass. The CPU figures are the fairer ones on a shared machine, where wall time
depends on what else runs. The load average is printed with the numbers. bm25s is optional (`pip install bm25s`);
without it only tantivy is measured.

    python bench/bench_search.py                        # 100,000 documents, writes bench/RESULTS.md
    python bench/bench_search.py --docs 20000 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import write_section  # noqa: E402

from mentor_server.toolsets.search import search_toolset  # noqa: E402
from mentor_server.toolsets.search_index import SearchIndex, build_index  # noqa: E402

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "dar",
    "vel",
    "sto",
    "quin",
    "bra",
    "mor",
    "tel",
    "zan",
    "gor",
    "fi",
    "ul",
    "esk",
    "tor",
    "ni",
    "va",
    "shel",
    "pe",
    "ro",
]


def make_corpus(path: Path, docs: int, words: int, seed: int) -> list[str]:
    """Write the corpus; return the documents' texts (for drawing queries)."""
    rng = random.Random(seed)
    vocabulary: dict[str, None] = {}
    while len(vocabulary) < 50_000:
        vocabulary["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))] = None
    vocab = list(vocabulary)
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    draws = np.random.default_rng(seed).choice(len(vocab), size=docs * words, p=weights / weights.sum())
    texts = []
    with path.open("w", encoding="utf-8") as out:
        for i in range(docs):
            text = " ".join(vocab[j] for j in draws[i * words : (i + 1) * words])
            title = " ".join(text.split()[:2]).title()
            texts.append(text)
            out.write(json.dumps({"id": f"doc-{i:06d}", "title": title, "text": text}) + "\n")
    return texts


def make_queries(texts: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    queries = []
    for _ in range(n):
        words = rng.sample(texts[rng.randrange(len(texts))].split(), rng.randint(4, 6))
        if rng.random() < 0.2:
            words.append("zzyzx")  # a word no document has
        queries.append(" ".join(words))
    return queries


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def latencies(search: Callable[[str], Any], queries: list[str]) -> dict[str, float]:
    for query in queries[:20]:  # warm the caches: the first queries page the index in
        search(query)
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - start)
    cpu = time.process_time()
    for query in queries:
        search(query)
    cpu = time.process_time() - cpu
    times.sort()
    return {
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000,
        "cpu_ms": cpu / len(queries) * 1000,
    }


def bench_tantivy(corpus: Path, folder: Path, queries: list[str], top_k: int) -> dict[str, Any]:
    manifest, wall, cpu = timed(lambda: build_index(corpus, folder / "tantivy"))
    index = SearchIndex.open(folder / "tantivy")
    toolset = search_toolset(index)
    lat = latencies(lambda q: index.search(q, top_k), queries)
    tool = latencies(lambda q: toolset.execute("search", {"query": q, "top_k": top_k}, timeout_s=None), queries)
    return {"docs": manifest["documents"], "wall_s": wall, "cpu_s": cpu, **lat, "tool_p50_ms": tool["p50_ms"]}


def _add_json_lines(index: Any, corpus: Path) -> None:
    """tantivy alone: the corpus's raw lines into `index`, no checks, two indexing threads."""
    writer = index.writer(heap_size=128_000_000, num_threads=2)
    with corpus.open(encoding="utf-8") as stream:
        for line in stream:
            writer.add_json(line)
    writer.commit()
    writer.wait_merging_threads()


def build_breakdown(corpus: Path, folder: Path) -> dict[str, float]:
    """Where tantivy's build time goes (CPU seconds): reading and checking the lines, making tantivy
    documents, and, for contrast, tantivy alone: raw lines (`add_json`) with its default tokenizer."""
    import tantivy

    from mentor_server.toolsets.search_index import read_corpus

    _, _, read = timed(lambda: sum(1 for _ in read_corpus(corpus)))
    _, _, documents = timed(
        lambda: sum(1 for d in read_corpus(corpus) if tantivy.Document(id=d.id, title=d.title, text=d.text))
    )
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("title", stored=True)
    builder.add_text_field("text", stored=True)
    (folder / "raw").mkdir()
    index = tantivy.Index(builder.build(), path=str(folder / "raw"))

    _, _, raw_cpu = timed(lambda: _add_json_lines(index, corpus))

    # The least tantivy can do for BM25 over these fields: nothing stored, term frequencies
    # without positions, no stemming. The toolset must store the text (a search returns the
    # documents) and stems English words on purpose, so this is a ceiling on any build rate
    # through tantivy on this machine, not an option the toolset could take.
    bare = tantivy.SchemaBuilder()
    bare.add_text_field("id", stored=True, tokenizer_name="raw")
    bare.add_text_field("title", stored=False, index_option="freq")
    bare.add_text_field("text", stored=False, index_option="freq")
    (folder / "bare").mkdir()
    bare_index = tantivy.Index(bare.build(), path=str(folder / "bare"))
    _, _, bare_cpu = timed(lambda: _add_json_lines(bare_index, corpus))
    return {
        "read_check_cpu_s": read,
        "read_check_documents_cpu_s": documents,
        "raw_add_json_cpu_s": raw_cpu,
        "bare_cpu_s": bare_cpu,
    }


def bench_bm25s(corpus: Path, queries: list[str], top_k: int) -> dict[str, Any] | None:
    try:
        import bm25s
    except ImportError:
        return None

    def build() -> Any:
        texts = []
        with corpus.open(encoding="utf-8") as stream:
            for line in stream:
                doc = json.loads(line)
                texts.append(f"{doc['title']} {doc['text']}")
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
        return retriever, len(texts)

    (retriever, docs), wall, cpu = timed(build)

    def search(query: str) -> Any:
        tokens = bm25s.tokenize(query, stopwords="en", show_progress=False)
        return retriever.retrieve(tokens, k=top_k, show_progress=False, n_threads=1)

    return {"docs": docs, "wall_s": wall, "cpu_s": cpu, **latencies(search, queries)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--words", type=int, default=60, help="words per document")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus.jsonl"
        texts = make_corpus(corpus, args.docs, args.words, args.seed)
        queries = make_queries(texts, args.queries, args.seed)
        megabytes = corpus.stat().st_size / 1e6
        del texts
        results = {"tantivy": bench_tantivy(corpus, folder, queries, args.top_k)}
        breakdown = build_breakdown(corpus, folder)
        bm25 = bench_bm25s(corpus, queries, args.top_k)
        if bm25 is not None:
            results["bm25s"] = bm25
    load_after = os.getloadavg()[0]

    rows = [
        "| library | build docs/s (wall) | build docs/s (CPU) | search p50 ms | search p95 ms | search CPU ms/query |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['docs'] / r['wall_s']:,.0f} | {r['docs'] / r['cpu_s']:,.0f} "
            f"| {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['cpu_ms']:.2f} |"
        )
    lines = [
        f"Corpus: {args.docs:,} generated documents of {args.words} words ({megabytes:.1f} MB of JSONL), "
        f"{args.queries} queries of 4-6 words, top_k={args.top_k}. Load average (1 min) {load_before:.2f} "
        f"before, {load_after:.2f} after, on {os.cpu_count()} cores.",
        "",
        *rows,
        "",
        f"- the `search` tool end to end (`Toolset.execute`: schema check, search, rendering): "
        f"p50 {results['tantivy']['tool_p50_ms']:.2f} ms",
    ]
    t = results["tantivy"]
    lines.append(
        f"- tantivy's build, {t['cpu_s']:.1f} CPU s in all: reading and checking the JSONL "
        f"{breakdown['read_check_cpu_s']:.1f} s, plus making tantivy documents "
        f"{breakdown['read_check_documents_cpu_s']:.1f} s together; for contrast, raw lines given to tantivy "
        f"(`add_json`, no checks, default tokenizer without stemming) {breakdown['raw_add_json_cpu_s']:.1f} CPU s "
        f"= {args.docs / breakdown['raw_add_json_cpu_s']:,.0f} documents per CPU second; and the least tantivy "
        f"can do (raw lines, nothing stored, no positions, no stemming) {breakdown['bare_cpu_s']:.1f} CPU s "
        f"= {args.docs / breakdown['bare_cpu_s']:,.0f} documents per CPU second"
    )
    if "bm25s" in results:
        t, b = results["tantivy"], results["bm25s"]
        lines.append(
            f"- tantivy / bm25s in this run: build {b['wall_s'] / t['wall_s']:.1f}x faster (wall), "
            f"{b['cpu_s'] / t['cpu_s']:.1f}x less CPU; search p50 {t['p50_ms'] / b['p50_ms']:.2f}x bm25s's, "
            f"search CPU {t['cpu_ms'] / b['cpu_ms']:.2f}x bm25s's"
        )
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("search", "Issue 13: search index build rate and latency (bench/bench_search.py)", body)


if __name__ == "__main__":
    main()
