"""`mentor-reward index`: build the `search` toolset's embedded index from a JSONL corpus, and query it.

    mentor-reward index build corpus.jsonl --out wiki_index
    mentor-reward index search wiki_index "Who founded Brelmor?" --top-k 3

`build` reads `{"id", "title", "text"}` lines (or FlashRAG's `{"id", "contents"}`), stops at the
first bad line with its line number (exit 2), and prints a JSON summary: documents, seconds,
documents per second and the manifest written beside the index. `search` prints the ranked
documents as the tool returns them, so an index can be checked before the service serves it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def _build(args: argparse.Namespace) -> int:
    from .toolsets.search_index import CorpusError, build_index, require_engine

    try:
        require_engine()  # imported before the clock starts: documents/s measures the build, not imports
        start = time.perf_counter()
        manifest = build_index(args.corpus, args.out, threads=args.threads)
    except (CorpusError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    summary: dict[str, Any] = {
        "out": args.out,
        "documents": manifest["documents"],
        "seconds": round(seconds, 3),
        "documents_per_second": round(manifest["documents"] / seconds) if seconds > 0 else None,
        "manifest": manifest,
    }
    print(json.dumps(summary, indent=2))
    return 0


def _search(args: argparse.Namespace) -> int:
    from .toolsets.search import search_toolset
    from .toolsets.search_index import CorpusError, SearchIndex

    try:
        toolset = search_toolset(SearchIndex.open(args.index))
    except (CorpusError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    execution = toolset.execute("search", {"query": args.query, "top_k": args.top_k}, timeout_s=None)
    if not execution.ok:
        print(f"error: {execution.error_message}", file=sys.stderr)
        return 1
    print(json.dumps(execution.result, indent=2, ensure_ascii=False))
    return 0


def add_index_command(sub: Any) -> None:
    """Add `index build` and `index search` to the `mentor-reward` subcommands."""
    index = sub.add_parser("index", help="build or query the search toolset's index (see docs/search.md)")
    actions = index.add_subparsers(dest="index_command", required=True)

    build = actions.add_parser("build", help="index a JSONL corpus of {id, title, text} into a folder")
    build.add_argument("corpus", help="the corpus, JSONL")
    build.add_argument("--out", required=True, help="the index folder (created; must be new or empty)")
    build.add_argument("--threads", type=int, default=None, help="indexing threads (default: cores, at most 4)")
    build.set_defaults(func=_build)

    search = actions.add_parser("search", help="run one search against a built index")
    search.add_argument("index", help="the index folder")
    search.add_argument("query", help="the query text")
    search.add_argument("--top-k", type=int, default=3, help="documents to return (default 3)")
    search.set_defaults(func=_search)
