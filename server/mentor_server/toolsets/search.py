"""The `search` toolset: one tool, `search(query, top_k)`, over a document index, for RAG rollouts.

The MENTOR paper's third domain is retrieval-augmented QA: the model searches a corpus, reads the
passages, and answers. This toolset gives that domain the same treatment as the calculator:
one schema shown to the model in training (TRL `tools=`) and in the service
(`/v1/tools/execute`), one executor, errors as data. The tool is backed by either

- an embedded BM25 index (`SearchIndex`, built by `mentor-reward index build CORPUS --out DIR`
  from JSONL `{"id", "title", "text"}`), deterministic for a fixed index, or
- an external retrieval server in the Search-R1/FlashRAG request shape (`RemoteRetriever`), so
  a GPU dense retriever plugs in by URL; its failures and slow answers are tool errors.

It is not a built-in toolset, because it needs an index: build one with `search_toolset(...)`
and `register_toolset` it, or name it in the service's toolsets file:

    toolsets:
      - name: search
        search: {index: ./wiki_index}            # or {url: http://127.0.0.1:8000/retrieve, timeout_s: 5}

The result is the ranked list of documents, `[{"id", "title", "text"}, ...]`, which the model
sees as JSON; scores are left out, since they mean different things for different backends and
the order already carries the ranking.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ._core import Toolset
from ._errors import config_error
from ._functions import tool_from_function
from .search_index import Document, SearchIndex

__all__ = ["DEFAULT_TOP_K", "MAX_TOP_K", "SearchBackend", "search_toolset", "search_toolset_from_config"]

DEFAULT_TOP_K = 3
"""Documents returned when the call does not say (Search-R1's default)."""

MAX_TOP_K = 20
"""The most documents one call may ask for: more would flood the model's context."""

_CONFIG_KEYS = ("index", "url", "timeout_s", "max_bytes", "max_top_k")


class SearchBackend(Protocol):
    """Anything that returns the `top_k` best documents for a query, best first."""

    source: str

    def search(self, query: str, top_k: int) -> list[Document]: ...


def search_toolset(
    backend: SearchBackend,
    *,
    name: str = "search",
    max_top_k: int = MAX_TOP_K,
    description: str = "",
) -> Toolset:
    """A toolset whose one tool, `search`, asks `backend` for documents.

    `max_top_k` bounds `top_k` in the tool's schema (a larger value is an `invalid_arguments`
    error, not a silent cut).
    """
    if not (isinstance(max_top_k, int) and not isinstance(max_top_k, bool) and max_top_k >= 1):
        raise config_error(f"max_top_k must be a positive integer, got {max_top_k!r}", "max_top_k")

    def search(query: str, top_k: int = DEFAULT_TOP_K) -> list[dict[str, str]]:
        """Search the document collection and return the best-matching documents.

        Args:
            query: What to look for, in plain words (e.g. a name and the fact wanted).
            top_k: How many documents to return, best first.
        """
        return [doc.to_dict() for doc in backend.search(query, top_k)]

    constraints: dict[str, dict[str, Any]] = {
        "query": {"pattern": r"\S"},  # a blank query is an argument error, caught before the backend
        "top_k": {"minimum": 1, "maximum": max_top_k},
    }
    tool = tool_from_function(search, constraints)
    return Toolset(name, [tool], description=description or f"Document search over {backend.source}.")


def search_toolset_from_config(
    config: Any, name: str, base: Path | None = None, where: str = "search", description: str = ""
) -> Toolset:
    """The toolset a toolsets file describes: `{"index": DIR}` or `{"url": URL, "timeout_s", "max_bytes"}`.

    A relative index folder is taken relative to `base` (the file's folder). Raises
    ScoringConfigError naming the field (`toolsets[0].search.index`).
    """
    if not isinstance(config, Mapping):
        raise config_error(f"{where}: expected an object with 'index' or 'url'", where)
    unknown = [key for key in config if key not in _CONFIG_KEYS]
    if unknown:
        field = f"{where}.{unknown[0]}"
        raise config_error(f"{field}: unknown key (expected {', '.join(_CONFIG_KEYS)})", field)
    if ("index" in config) == ("url" in config):
        raise config_error(f"{where}: give exactly one of 'index' (a folder) or 'url' (a retriever)", where)
    max_top_k = config.get("max_top_k", MAX_TOP_K)
    if not (isinstance(max_top_k, int) and not isinstance(max_top_k, bool) and max_top_k >= 1):
        raise config_error(f"{where}.max_top_k: expected a positive integer, got {max_top_k!r}", f"{where}.max_top_k")
    field = f"{where}.index" if "index" in config else f"{where}.url"
    backend: SearchBackend
    try:
        if "index" in config:
            if set(config) & {"timeout_s", "max_bytes"}:
                raise ValueError("'timeout_s' and 'max_bytes' apply to a 'url' retriever only")
            folder = Path(str(config["index"]))
            backend = SearchIndex.open(folder if folder.is_absolute() or base is None else base / folder)
        else:
            # Imported here: http.client and its email parsers are a noticeable share of the
            # engine's import time, and only a toolset with a retriever URL needs them.
            from .search_remote import RemoteRetriever

            options = {key: config[key] for key in ("timeout_s", "max_bytes") if key in config}
            backend = RemoteRetriever(config["url"], **options)
    except (ValueError, ImportError, OSError) as exc:
        raise config_error(f"{field}: {exc}", field) from exc
    return search_toolset(backend, name=name, max_top_k=max_top_k, description=description)
