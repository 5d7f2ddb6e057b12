"""The `search` tool's other backend: an external retrieval server, called by URL.

Search-R1 and FlashRAG run their dense retrievers (e5 + faiss on a GPU) as a small HTTP server,
and the RL community's retrievers speak its shape:

    POST <url>  {"queries": ["..."], "topk": 3, "return_scores": true}
    200         {"result": [[{"document": {"id", "contents"} | {"id", "title", "text"}, "score": 0.83}, ...]]}

one list of hits per query (a server that ignores `return_scores` may send the documents bare).
`RemoteRetriever.search` sends one query and turns the answer into the same `Document`s the
embedded index returns. Everything that can go wrong on the other side (no connection, an HTTP
error, a body that is not that shape, more than `max_bytes`, no complete answer within
`timeout_s` in total, a slow drip included) raises `RetrieverError` with a short message, which
the toolset reports as a tool error: the rollout goes on and the model sees why.

Only the standard library is used (the toolsets package imports no HTTP framework). Whether a
remote retriever is deterministic is the server's business; the embedded index is.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from typing import Any

from .search_index import CorpusError, Document, document_from_json

__all__ = ["RemoteRetriever", "RetrieverError"]

_CHUNK = 65536


class RetrieverError(RuntimeError):
    """The retrieval server could not be reached in time or answered something unusable."""


class RemoteRetriever:
    """A Search-R1/FlashRAG-style retrieval server at `url` (the full endpoint, e.g. `.../retrieve`)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, max_bytes: int = 4 * 1024 * 1024) -> None:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a retriever URL must be http(s)://host[:port]/path, got {url!r}")
        if not (isinstance(timeout_s, int | float) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s!r}")
        if not (isinstance(max_bytes, int) and max_bytes > 0):
            raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.url = url
        self.timeout_s = float(timeout_s)
        self.max_bytes = max_bytes
        self.source = url

    def __repr__(self) -> str:
        return f"RemoteRetriever(url={self.url!r}, timeout_s={self.timeout_s:g})"

    def search(self, query: str, top_k: int) -> list[Document]:
        body = json.dumps({"queries": [query], "topk": top_k, "return_scores": True}).encode()
        answer = self._post(body)
        return _documents(answer, top_k)

    def _post(self, body: bytes) -> Any:
        deadline = time.monotonic() + self.timeout_s
        parts = urllib.parse.urlsplit(self.url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection = kind(parts.netloc, timeout=self.timeout_s)
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            self._limit(connection, deadline)
            response = connection.getresponse()
            raw = self._read(connection, response, deadline)
            status, reason = response.status, response.reason
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            raise RetrieverError(f"the retriever did not answer within {self.timeout_s:g} s") from None
        except ConnectionRefusedError:
            raise RetrieverError(f"cannot reach the retriever at {self.url}: connection refused") from None
        except (http.client.HTTPException, OSError) as exc:  # a dropped connection, a garbled status line
            raise RetrieverError(f"the retriever's answer broke off: {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if status != 200:
            raise RetrieverError(f"the retriever answered HTTP {status} {reason}".rstrip())
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise RetrieverError("the retriever's answer is not JSON") from None

    @staticmethod
    def _limit(connection: http.client.HTTPConnection, deadline: float) -> None:
        # A socket timeout bounds each read, not the whole answer: a server that drips one byte
        # a second would never trip it. Each read gets only the time left before the deadline.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if connection.sock is not None:
            connection.sock.settimeout(remaining)

    def _read(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, deadline: float
    ) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            self._limit(connection, deadline)
            chunk = response.read1(_CHUNK)
            if not chunk:
                if response.length:  # the server closed before the length it announced
                    raise RetrieverError(f"the retriever's answer broke off {response.length} bytes short")
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise RetrieverError(f"the retriever's answer is larger than {self.max_bytes} bytes")
            chunks.append(chunk)


def _documents(answer: Any, top_k: int) -> list[Document]:
    """The first query's hits of a `{"result": [[hit, ...]]}` answer, as Documents (at most top_k)."""
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], list):
        raise RetrieverError('the retriever\'s answer is not {"result": [[hits of the one query]]}')
    documents: list[Document] = []
    for rank, hit in enumerate(result[0][:top_k]):
        where = f"result[0][{rank}]"
        if isinstance(hit, dict) and "document" in hit:
            score = hit.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
                raise RetrieverError(f"{where}.score is not a number")
            hit, where = hit["document"], f"{where}.document"
        if isinstance(hit, str):  # some servers send the passage text alone
            hit = {"id": str(rank), "contents": hit}
        elif isinstance(hit, dict) and "id" not in hit:
            hit = {**hit, "id": str(rank)}
        try:
            documents.append(document_from_json(hit, where))
        except CorpusError as exc:
            raise RetrieverError(f"the retriever's {exc}") from None
    return documents
