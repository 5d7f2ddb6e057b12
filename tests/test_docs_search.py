"""docs/search.md's blocks run as written on a small generated corpus.

The corpus has one document that answers the page's example questions ("Who founded Brelmor?")
among filler. The index commands run under bash in a scratch folder and print what the page says;
the toolsets file loads with the service's own loader; a real service given that file answers the
page's curl command with the shown shape; the TRL snippet runs in its own interpreter (its
`GRPOTrainer(...)` is a stand-in that keeps its arguments, since training is not the point); the
signature line is the tool's real signature; the retrieval protocol is what `RemoteRetriever`
sends to, and reads from, a local HTTP server answering the page's sample; the scoring spec
validates and is the retrieval family's own (`RETRIEVAL_SPEC`'s components).
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from doc_blocks import block, shell_lines, shown_output
from doc_services import documented_service, run_documented

pytest.importorskip("Stemmer", reason="the search extra is not installed")

# Every test here uses the index the page's own build command makes (a CLI process).
pytestmark = pytest.mark.slow

BRELMOR = {"id": "brelmor", "title": "Brelmor", "text": "Brelmor is a town founded in 1821 by Ada Venn."}
FILLER = [
    {"id": f"doc-{n}", "title": f"Town {n}", "text": f"Town {n} was founded on the river and trades in wool and salt."}
    for n in range(40)
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder with corpus.jsonl, and wiki_index built by the page's own build command."""
    where = tmp_path_factory.mktemp("search-doc")
    lines = [json.dumps(doc) for doc in [*FILLER[:20], BRELMOR, *FILLER[20:]]]
    (where / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build, _ = shell_lines(block("search-build").body)
    result = run_documented(build, where)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    # "prints documents, seconds, documents/s"
    assert summary["documents"] == 41 and summary["seconds"] >= 0 and summary["documents_per_second"] > 0
    return where


def test_build_and_search_commands(folder: Path) -> None:
    _, search = shell_lines(block("search-build").body)
    result = run_documented(search, folder)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert 1 <= len(hits) <= 3  # --top-k 3
    assert hits[0] == BRELMOR


def test_the_signature_line_is_the_tools(folder: Path) -> None:
    from mentor_server.toolsets.search import search_toolset
    from mentor_server.toolsets.search_index import SearchIndex

    (line,) = block("search-signature").body.strip().splitlines()
    shown = re.fullmatch(r"search\((.*)\) -> \[\{(.*)\}, \.\.\.\]\s+# .*", line)
    assert shown, line
    (search,) = search_toolset(SearchIndex.open(folder / "wiki_index")).functions()
    assert str(inspect.signature(search, eval_str=True)).startswith(f"({shown.group(1)})")
    keys = re.findall(r'"(\w+)"', shown.group(2))
    assert [list(hit) for hit in search("Brelmor", 2)] == [keys] * len(search("Brelmor", 2))


def _toolsets_file(folder: Path) -> Path:
    path = folder / "toolsets.yaml"
    path.write_text(block("search-toolsets-yaml").body, encoding="utf-8")
    return path


def test_the_toolsets_file_loads(folder: Path) -> None:
    from mentor_server.toolsets import load_toolsets_file

    search, dense = load_toolsets_file(_toolsets_file(folder))
    assert (search.name, search.description) == ("search", "Passages from our wiki dump.")
    found = search.execute("search", {"query": "Brelmor founded", "top_k": 1})
    assert found.ok and found.result == [BRELMOR]
    assert dense.name == "dense" and list(dense.tools) == ["search"]


@pytest.mark.e2e
def test_the_service_answers_the_curl_command(folder: Path) -> None:
    toolsets = _toolsets_file(folder)
    (serve,) = [line for line in shell_lines(block("readme-serve").body) if "--config" not in line]
    (curl,) = shell_lines(block("search-curl").body)
    (shown,) = shown_output(block("search-curl").body)
    with documented_service(serve, folder, folder / "serve.log", MENTOR_TOOLSETS=str(toolsets)) as (_, port):
        result = run_documented(curl, folder, port)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    shown_keys = re.findall(r'(?<!\\)"(\w+)": ', shown)  # the page's keys, top level and a hit's
    hit_keys = list(answer["result"][0])
    assert list(answer) == [key for key in shown_keys if key not in hit_keys]
    assert set(shown_keys) == {*answer, *hit_keys}
    assert answer["ok"] is True and answer["error"] is None
    assert len(answer["result"]) == 2 and answer["result"][0] == BRELMOR  # "top_k": 2
    assert json.loads(answer["content"]) == answer["result"]


def test_the_trl_snippet_runs(folder: Path) -> None:
    stand_in = "def GRPOTrainer(*args, **kwargs):\n    return kwargs\n\n"
    after = (
        "\nimport json\nfrom mentor_server.toolsets import get_toolset\n"
        "(search,) = trainer['tools']\n"
        "print(json.dumps([get_toolset('search') is toolset, search(query='Who founded Brelmor?', top_k=1)]))\n"
    )
    code = stand_in + block("search-trl").body + after
    result = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, [BRELMOR]]


class _Retriever(BaseHTTPRequestHandler):
    answer = b""
    requests: ClassVar[list[tuple[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: Any) -> None:  # the test's output stays quiet
        pass


@pytest.fixture
def retriever() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Retriever)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/retrieve"
    finally:
        server.shutdown()
        server.server_close()


def test_the_remote_protocol_is_what_the_retriever_speaks(retriever: str) -> None:
    from mentor_server.toolsets.search_remote import RemoteRetriever

    request, answer = block("search-remote-protocol").body.strip().splitlines()
    sent = json.loads(request.removeprefix("POST <url>").strip())
    _Retriever.answer = answer.removeprefix("200").strip().replace(", ...]]", "]]").encode()
    _Retriever.requests.clear()
    (hit,) = RemoteRetriever(retriever).search("Who founded Brelmor?", 3)
    assert _Retriever.requests == [("/retrieve", {**sent, "queries": ["Who founded Brelmor?"]})]
    assert hit.to_dict() == {"id": "...", "title": "Title", "text": "text"}


def test_the_scoring_spec_is_the_familys() -> None:
    from mentor_server.scoring import RewardSpec
    from mentor_trainer.families_retrieval import RETRIEVAL_SPEC

    shown = json.loads(block("search-spec").body)
    spec = RewardSpec.from_dict(shown)
    assert spec.toolset == "search"
    assert shown["components"] == RETRIEVAL_SPEC["components"]  # "this spec with the mentor preset's gates"
