"""Search index build rate and query latency: the `search` index as a user builds it, against tantivy and bm25s.

Issue 13's target: an index of a 100,000-document generated corpus built at >= 50,000 documents/s
and `search` answering at p50 <= 5 ms, on this machine. The corpus is written as JSONL
`{"id", "title", "text"}`; each document is a paragraph of W words (default 60) drawn from a
Zipf-distributed vocabulary of 50,000 made-up words, the shape of an encyclopedia passage without
any real text. Queries are 4 to 6 words of a random document, plus now and then a word no document has.

- The build is measured as a user runs it: `mentor-reward index build CORPUS --out DIR`, a fresh
  process each time, `--runs` times with the default thread count (cores, at most 4) and as many
  with `--threads 1`, interleaved so both see the same noise. Per run: the `documents_per_second`
  the command prints (its clock around `build_index`), the process's wall time from start to exit
  (interpreter start, imports and writing the files included) and its CPU time (user + system, from
  `getrusage(RUSAGE_CHILDREN)`). The target is judged on the first, median over runs.
- Search, on one of the indexes just built: `SearchIndex.search` and the `search` tool end to end
  (`Toolset.execute`: argument check, search, rendering), p50 and p95 of wall time per query, and
  the mean CPU time per query over a second pass (the fairer figure on a shared machine).
- Comparisons, in the same run, when installed (each is skipped with a line saying so):
  tantivy, the engine of index format 1, built as that toolset built it (id raw, title and text
  `en_stem`, all stored, `add_document` from `read_corpus`, 2 indexing threads, 64 MB heap), in
  this process, and searched as it searched (BM25 over title and text, title boost 2, the stored
  fields of the hits read back; without format 1's window for ties at the cut); and bm25s (reading
  the JSONL, `bm25s.tokenize` + `BM25.index`; queries `tokenize` + `retrieve(k)` on one thread).
  Their builds run in this process, so their figures carry no interpreter start-up; ours do.

The load average is printed before and after, with the machine. bench/RESULTS.md gets the section
`search` unless `--no-write`.

    python bench/bench_search.py                              # 100,000 documents, 5 runs per thread count
    python bench/bench_search.py --docs 5000 --runs 2 --no-write
    pip install tantivy==0.27.0 bm25s                         # for the comparisons (optional)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _results import machine_description, write_section  # noqa: E402

from mentor_server.toolsets.search import search_toolset  # noqa: E402
from mentor_server.toolsets.search_index import SearchIndex, query_words, read_corpus  # noqa: E402

TARGET_BUILD_DOCS_PER_S = 50_000
TARGET_SEARCH_P50_MS = 5.0
OLD_NUMBERS = "commit 231bac4's bench/RESULTS.md"

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


# ---------------------------------------------------------------------------- ours: the CLI build
def default_threads() -> int:
    """The thread count `index build` uses without `--threads` (cores available, at most 4), for the report."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def cli_command() -> list[str]:
    """`mentor-reward` beside this interpreter (how a user runs it), else the module behind it."""
    script = Path(sys.executable).with_name("mentor-reward")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mentor_server.cli"]


@dataclass
class BuildRun:
    documents_per_second: float  # printed by the command: its own clock around the build
    build_s: float  # the same clock's seconds
    wall_s: float  # the process, start to exit
    cpu_s: float  # the process's user + system time


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli_build(command: list[str], corpus: Path, out: Path, threads: int | None, docs: int) -> BuildRun:
    args = [*command, "index", "build", str(corpus), "--out", str(out)]
    if threads is not None:
        args += ["--threads", str(threads)]
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
    summary = json.loads(done.stdout)
    if summary["documents"] != docs:  # a build that dropped documents would be fast for the wrong reason
        raise SystemExit(f"`index build` indexed {summary['documents']} documents, not {docs}")
    return BuildRun(float(summary["documents_per_second"]), float(summary["seconds"]), wall, cpu)


def bench_builds(corpus: Path, folder: Path, runs: int, docs: int) -> tuple[dict[str, list[BuildRun]], Path]:
    """`runs` builds per thread count, alternating which goes first in a round; keeps one default-threads index."""
    command = cli_command()
    results: dict[str, list[BuildRun]] = {"default": [], "1": []}
    kept = folder / "ours"
    for round_ in range(runs):
        order: list[int | None] = [None, 1] if round_ % 2 == 0 else [1, None]
        for threads in order:
            label = "default" if threads is None else str(threads)
            out = kept if (threads is None and round_ == 0) else folder / f"build-{round_}-{label}"
            results[label].append(run_cli_build(command, corpus, out, threads, docs))
            if out != kept:
                shutil.rmtree(out)
    return results, kept


def bench_ours_search(folder: Path, queries: list[str], top_k: int) -> dict[str, float]:
    index = SearchIndex.open(folder)
    toolset = search_toolset(index)
    first = toolset.execute("search", {"query": queries[0], "top_k": top_k}, timeout_s=None)
    if not first.ok or len(index.search(queries[0], top_k)) != top_k:  # timing errors would flatter us
        raise SystemExit(f"the search tool did not answer {queries[0]!r} with {top_k} documents")
    lat = latencies(lambda q: index.search(q, top_k), queries)
    tool = latencies(lambda q: toolset.execute("search", {"query": q, "top_k": top_k}, timeout_s=None), queries)
    return {**lat, **{f"tool_{key}": value for key, value in tool.items()}}


# ---------------------------------------------------------------------------- comparisons
def bench_tantivy(corpus: Path, folder: Path, queries: list[str], top_k: int) -> dict[str, Any] | None:
    try:
        import tantivy
    except ImportError:
        return None
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("title", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("text", stored=True, tokenizer_name="en_stem")
    (folder / "tantivy").mkdir()
    index = tantivy.Index(builder.build(), path=str(folder / "tantivy"))

    def build() -> int:
        writer = index.writer(heap_size=64_000_000, num_threads=2)  # format 1's writer for 2 threads
        count = 0
        for doc in read_corpus(corpus):  # format 1 read and checked every line with the same reader
            writer.add_document(tantivy.Document(id=doc.id, title=doc.title, text=doc.text))
            count += 1
        writer.commit()
        writer.wait_merging_threads()
        return count

    docs, wall, cpu = timed(build)
    index.reload()
    searcher = index.searcher()

    def search(query: str) -> list[Any]:
        parsed = index.parse_query(query_words(query), ["title", "text"], field_boosts={"title": 2.0})
        hits = searcher.search(parsed, top_k + 1).hits  # format 1 asked one past top_k to see ties
        return [searcher.doc(address) for _, address in hits[:top_k]]

    lat = latencies(search, queries)
    return {"version": metadata.version("tantivy"), "docs": docs, "wall_s": wall, "cpu_s": cpu, **lat}


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

    lat = latencies(search, queries)
    return {"version": metadata.version("bm25s"), "docs": docs, "wall_s": wall, "cpu_s": cpu, **lat}


# ---------------------------------------------------------------------------- the report
def spread(values: list[float], fmt: str) -> str:
    """`median (min-max)` in `fmt`."""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def build_rows(builds: dict[str, list[BuildRun]], docs: int, threads: int) -> list[str]:
    rows = [
        "| `index build` threads | runs | documents/s, printed by the command | process wall s, start to exit "
        "| documents per process-wall s | process CPU s | documents per CPU s | start-up, imports, exit s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, runs in builds.items():
        name = f"default ({threads})" if label == "default" else f"`--threads {label}`"
        rows.append(
            f"| {name} | {len(runs)} | {spread([r.documents_per_second for r in runs], ',.0f')} "
            f"| {spread([r.wall_s for r in runs], '.2f')} | {spread([docs / r.wall_s for r in runs], ',.0f')} "
            f"| {spread([r.cpu_s for r in runs], '.2f')} | {spread([docs / r.cpu_s for r in runs], ',.0f')} "
            f"| {spread([r.wall_s - r.build_s for r in runs], '.2f')} |"
        )
    return rows


def per_run_lines(builds: dict[str, list[BuildRun]]) -> list[str]:
    lines = ["```"]
    for round_ in range(len(builds["default"])):
        for label in ("default", "1") if round_ % 2 == 0 else ("1", "default"):
            r = builds[label][round_]
            lines.append(
                f"round {round_} threads {label:>7}: {r.documents_per_second:>9,.0f} documents/s printed, "
                f"build {r.build_s:.2f} s, process wall {r.wall_s:.2f} s, CPU {r.cpu_s:.2f} s"
            )
    return [*lines, "```"]


def search_rows(ours: dict[str, float], others: dict[str, dict[str, Any] | None]) -> list[str]:
    rows = [
        "| search | p50 ms | p95 ms | CPU ms/query |",
        "| --- | ---: | ---: | ---: |",
        f"| ours, `SearchIndex.search` | {ours['p50_ms']:.2f} | {ours['p95_ms']:.2f} | {ours['cpu_ms']:.2f} |",
        f"| ours, the `search` tool end to end (`Toolset.execute`) | {ours['tool_p50_ms']:.2f} "
        f"| {ours['tool_p95_ms']:.2f} | {ours['tool_cpu_ms']:.2f} |",
    ]
    for name, r in others.items():
        if r is not None:
            rows.append(f"| {name} {r['version']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['cpu_ms']:.2f} |")
    return rows


def comparison_lines(median_rate: float, median_cpu_rate: float, ours: dict[str, float], name: str, r: Any) -> str:
    if r is None:
        return f"- {name}: not installed, not measured (`pip install {name}` to compare)"
    return (
        f"- {name} {r['version']}: build {r['docs'] / r['wall_s']:,.0f} documents per wall s, "
        f"{r['docs'] / r['cpu_s']:,.0f} per CPU s. Ours / {name}: build rate "
        f"{median_rate / (r['docs'] / r['wall_s']):.2f} (the command's documents/s over its wall rate; above 1, "
        f"ours builds faster), per CPU second {median_cpu_rate / (r['docs'] / r['cpu_s']):.2f} (ours: the whole "
        f"process, start-up included); search p50 {ours['p50_ms'] / r['p50_ms']:.2f}, search CPU per query "
        f"{ours['cpu_ms'] / r['cpu_ms']:.2f} (below 1, ours searches faster)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--words", type=int, default=60, help="words per document")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=5, help="`index build` processes per thread count")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    args = ap.parse_args()

    print(f"machine: {machine_description()}", flush=True)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    threads = default_threads()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus.jsonl"
        texts = make_corpus(corpus, args.docs, args.words, args.seed)
        queries = make_queries(texts, args.queries, args.seed)
        megabytes = corpus.stat().st_size / 1e6
        del texts
        builds, index_folder = bench_builds(corpus, folder, args.runs, args.docs)
        ours = bench_ours_search(index_folder, queries, args.top_k)
        others = {
            "tantivy": bench_tantivy(corpus, folder, queries, args.top_k),
            "bm25s": bench_bm25s(corpus, queries, args.top_k),
        }
    load_after = os.getloadavg()

    median_rate = statistics.median(r.documents_per_second for r in builds["default"])
    median_cpu_rate = statistics.median(args.docs / r.cpu_s for r in builds["default"])
    build_met = median_rate >= TARGET_BUILD_DOCS_PER_S
    search_met = ours["p50_ms"] <= TARGET_SEARCH_P50_MS
    lines = [
        f"Corpus: {args.docs:,} generated documents of {args.words} words ({megabytes:.1f} MB of JSONL), "
        f"{args.queries} queries of 4-6 words, top_k={args.top_k}. Load average (1, 5, 15 min) "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} before, "
        f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} after, on {os.cpu_count()} cores. "
        f"Index format 2 (the column-wise BM25 index); format 1 was tantivy, whose figures are in {OLD_NUMBERS}.",
        "",
        f"**Targets: build >= {TARGET_BUILD_DOCS_PER_S:,} documents/s: {'MET' if build_met else 'NOT MET'} "
        f"({median_rate:,.0f}, median of `index build`'s own documents_per_second over {len(builds['default'])} "
        f"processes, default threads = {threads}); search p50 <= {TARGET_SEARCH_P50_MS:g} ms: "
        f"{'MET' if search_met else 'NOT MET'} ({ours['p50_ms']:.2f} ms; the tool end to end "
        f"{ours['tool_p50_ms']:.2f} ms).**",
        "",
        "Build, `mentor-reward index build CORPUS --out DIR`, one fresh process per run, the two thread counts "
        "interleaved (median (min-max) over runs):",
        "",
        *build_rows(builds, args.docs, threads),
        "",
        *per_run_lines(builds),
        "",
        *search_rows(ours, others),
        "",
        "Comparisons in the same run (their builds timed in this process, without interpreter start-up):",
        "",
        comparison_lines(median_rate, median_cpu_rate, ours, "tantivy", others["tantivy"]),
        comparison_lines(median_rate, median_cpu_rate, ours, "bm25s", others["bm25s"]),
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("search", "Issue 13: search index build rate and latency (bench/bench_search.py)", body)


if __name__ == "__main__":
    main()
