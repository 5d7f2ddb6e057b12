"""The `search` tool against a real local retrieval server: the Search-R1/FlashRAG shape, and
every way such a server can misbehave, which must come back as tool errors within the time limit.
Last, the service serving both backends through `/v1/tools/execute`."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from mentor_server.api import ServiceSettings, create_app
from mentor_server.toolsets.search import search_toolset
from mentor_server.toolsets.search_index import build_index
from mentor_server.toolsets.search_remote import RemoteRetriever, RetrieverError

PASSAGES = [
    {"id": "11", "contents": '"Brelmor"\nBrelmor is a river town founded in 1742.'},
    {"id": "12", "contents": '"Quell"\nThe Quell runs through Brelmor.'},
    {"id": "13", "contents": '"Vantemoor"\nA hill village.'},
]

_STOP = threading.Event()  # set when the server shuts down, so stalled handlers end at once


class Retriever(BaseHTTPRequestHandler):
    """Answers like a FlashRAG retrieval server on /retrieve; other paths misbehave in one way each."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Retriever.requests.append(request)
        k = request["topk"]
        hits = [{"document": doc, "score": 1.0 - i / 10} for i, doc in enumerate(PASSAGES)]
        path = self.path
        if path == "/retrieve":
            self._send(200, json.dumps({"result": [hits[:k]]}).encode())
        elif path == "/too-many":  # a server that ignores topk: the tool cuts to top_k
            self._send(200, json.dumps({"result": [hits]}).encode())
        elif path == "/bare":  # return_scores ignored: documents without the hit wrapper
            self._send(200, json.dumps({"result": [[{"id": 5, "title": "T", "text": "x"}, "just a passage"]]}).encode())
        elif path == "/500":
            self._send(500, b'{"detail": "faiss exploded"}')
        elif path == "/not-json":
            self._send(200, b"<html>proxy error</html>", "text/html")
        elif path == "/wrong-shape":
            self._send(200, json.dumps({"results": hits}).encode())
        elif path == "/two-lists":
            self._send(200, json.dumps({"result": [hits, hits]}).encode())
        elif path == "/bad-document":
            self._send(200, json.dumps({"result": [[{"document": {"id": "1", "text": 3}, "score": 1}]]}).encode())
        elif path == "/bad-score":
            self._send(200, json.dumps({"result": [[{"document": PASSAGES[0], "score": "high"}]]}).encode())
        elif path == "/huge":
            self._send(200, json.dumps({"result": [[{"id": "1", "text": "x" * 3_000_000}]]}).encode())
        elif path == "/silent":  # accepts the request and never answers
            _STOP.wait(60)
        elif path == "/drip":  # headers at once, then one byte every 0.2 s: each read is quick
            body = json.dumps({"result": [hits[:k]]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                if _STOP.wait(0.2):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        elif path == "/hang-up":
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"result"')
            self.close_connection = True
        else:
            self._send(404, b"{}")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _STOP.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Retriever)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _STOP.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_the_search_r1_shape_is_spoken(server: str) -> None:
    toolset = search_toolset(RemoteRetriever(f"{server}/retrieve"))
    execution = toolset.execute("search", {"query": "Brelmor founded", "top_k": 2})
    assert execution.ok, execution.error_message
    assert execution.result == [
        {"id": "11", "title": "Brelmor", "text": "Brelmor is a river town founded in 1742."},
        {"id": "12", "title": "Quell", "text": "The Quell runs through Brelmor."},
    ]
    assert Retriever.requests[-1] == {"queries": ["Brelmor founded"], "topk": 2, "return_scores": True}


def test_more_hits_than_asked_are_cut_and_bare_documents_are_read(server: str) -> None:
    assert len(RemoteRetriever(f"{server}/too-many").search("q", 2)) == 2
    bare = RemoteRetriever(f"{server}/bare").search("q", 5)
    assert [(d.id, d.title, d.text) for d in bare] == [("5", "T", "x"), ("1", "", "just a passage")]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/500", "HTTP 500"),
        ("/nowhere", "HTTP 404"),
        ("/not-json", "not JSON"),
        ("/wrong-shape", 'not {"result"'),
        ("/two-lists", 'not {"result"'),
        ("/bad-document", r"result\[0\]\[0\].document: 'text' must be a string"),
        ("/bad-score", "score is not a number"),
        ("/huge", "larger than 1000000 bytes"),
        ("/hang-up", "broke off"),
    ],
    ids=["500", "404", "not-json", "wrong-shape", "two-lists", "bad-document", "bad-score", "huge", "hang-up"],
)
def test_a_malformed_answer_is_a_tool_error(server: str, path: str, message: str) -> None:
    toolset = search_toolset(RemoteRetriever(server + path, timeout_s=30, max_bytes=1_000_000))
    execution = toolset.execute("search", {"query": "Brelmor"}, timeout_s=60)
    assert (execution.ok, execution.error_type) == (False, "tool_error")
    assert execution.error_message is not None
    assert "RetrieverError" in execution.error_message
    assert json.loads(execution.content)["error"]
    with pytest.raises(RetrieverError, match=message):
        RemoteRetriever(server + path, timeout_s=30, max_bytes=1_000_000).search("Brelmor", 3)


@pytest.mark.parametrize("path", ["/silent", "/drip"])
def test_a_slow_answer_is_cut_at_the_retrievers_time_limit(server: str, path: str) -> None:
    """Silence and a slow drip both end at the limit (the drip would take about 40 s in full)."""
    retriever = RemoteRetriever(server + path, timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(RetrieverError, match="did not answer within 1 s"):
        retriever.search("Brelmor", 3)
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 15, elapsed  # the limit, plus whatever a loaded machine adds


def test_a_closed_port_is_a_tool_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    execution = search_toolset(RemoteRetriever(f"http://127.0.0.1:{port}/retrieve")).execute(
        "search", {"query": "q"}, timeout_s=60
    )
    assert (execution.ok, execution.error_type) == (False, "tool_error")
    assert "cannot reach the retriever" in (execution.error_message or "")


# ---------------------------------------------------------------------------- through the service
def test_the_service_executes_both_backends(tmp_path: Path, server: str) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in PASSAGES))
    build_index(corpus, tmp_path / "index")
    toolsets = tmp_path / "toolsets.yaml"
    toolsets.write_text(
        "toolsets:\n"
        "  - name: wiki\n    search: {index: index}\n"
        f"  - name: remote\n    search: {{url: '{server}/retrieve', timeout_s: 30}}\n"
        f"  - name: broken\n    search: {{url: '{server}/500'}}\n"
    )
    app = create_app(ServiceSettings(workers=1, toolsets=[toolsets], tool_timeout_s=60))
    with TestClient(app, raise_server_exceptions=False) as client:

        def execute(toolset: str, query: str) -> dict[str, Any]:
            body = {"toolset": toolset, "name": "search", "arguments": {"query": query, "top_k": 1}}
            response = client.post("/v1/tools/execute", json=body)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        local = execute("wiki", "hill village")
        assert local["ok"] and local["result"] == [{"id": "13", "title": "Vantemoor", "text": "A hill village."}]
        assert json.loads(local["content"]) == local["result"]
        remote = execute("remote", "Brelmor")
        assert remote["ok"] and remote["result"][0]["id"] == "11"
        broken = execute("broken", "Brelmor")
        assert broken["ok"] is False and broken["error"]["type"] == "tool_error"
        assert "HTTP 500" in broken["error"]["message"]
        listed = {t["name"]: t for t in client.get("/v1/toolsets").json()["toolsets"]}
        assert [tool["function"]["name"] for tool in listed["wiki"]["tools"]] == ["search"]
