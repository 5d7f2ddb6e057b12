"""An OpenAI-compatible chat-completions server whose "model" is the PROGRAMMATIC TEACHER, for `teach` tests.

This is not a language model: it replays the benchmark's reference traces (correct by
construction), so the tests can check that verified traces are kept, which a tiny random model
never produces. The real-model test runs `transformers serve` instead. What it does check is the
client side of the protocol, as strictly as OpenAI does: `tools` must be sent, the system prompt
must not carry a second tool block, assistant `tool_calls` need ids and JSON-string arguments,
every `tool` message must answer an earlier call id, and the tool results must be the toolset's
real output (a wrong result makes the "model" answer wrongly).

The model name picks the behaviour: `teacher-<style>[+wrong3][+flaky]`:
- style `structured`: calls as `tool_calls`; `hermes`: `<tool_call>` text in `content` (a vLLM
  server without a tool parser); `mixed`: alternates per call;
- `+wrong3`: every third task of the data file (index 2, 5, ...) gets a wrong final answer;
- `+flaky`: each turn of every third task (index 0, 3, ...) fails once first (503 or 429 with
  `Retry-After: 0`); the retry succeeds.
Other names get 404, a missing or wrong `--api-key` bearer 401, like a real server.

Run: python tests/trainer/_teach_server.py --data DIR/split.jsonl --port N [--api-key KEY]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

STYLES = ("structured", "hermes", "mixed")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status, headers=headers)


def _check_protocol(body: dict[str, Any]) -> str | None:
    """What a strict OpenAI server would reject in the request, or None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    if not body.get("tools"):
        return "tools were not sent"
    if messages[0].get("role") == "system" and "# Tools" in str(messages[0].get("content")):
        return "the system prompt already carries a tool block (the server renders tools= itself)"
    open_ids: set[str] = set()
    for m in messages:
        if m.get("role") == "assistant":
            if "<tool_call>" in str(m.get("content") or ""):
                return "tool-call markup left in an assistant message's content"
            for call in m.get("tool_calls") or []:
                if not call.get("id") or call.get("type") != "function":
                    return "a tool call without id or type"
                arguments = call["function"].get("arguments")
                if not isinstance(arguments, str) or not isinstance(json.loads(arguments), dict):
                    return "tool call arguments must be a JSON-encoded object string"
                open_ids.add(call["id"])
        elif m.get("role") == "tool":
            if m.get("tool_call_id") not in open_ids:
                return f"tool message answers an unknown tool_call_id {m.get('tool_call_id')!r}"
            open_ids.discard(m["tool_call_id"])
    return None


def create_app(rows: list[dict[str, Any]], api_key: str | None) -> FastAPI:
    by_question = {r["prompt"][-1]["content"]: (i, r) for i, r in enumerate(rows)}
    requests: Counter[str] = Counter()
    failed_once: set[tuple[str, str, int]] = set()
    ids = itertools.count()
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/stats")
    async def stats() -> dict[str, int]:
        return dict(requests)

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Any:
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            return _error(401, "invalid api key")
        body = await request.json()
        model = str(body.get("model"))
        style, *flags = model.removeprefix("teacher-").split("+")
        if not model.startswith("teacher-") or style not in STYLES:
            return _error(404, f"the model {model!r} does not exist")
        requests[model] += 1
        problem = _check_protocol(body)
        if problem is not None:
            return _error(400, problem)
        messages = body["messages"]
        question = next(m["content"] for m in messages if m["role"] == "user")
        if question not in by_question:
            return _error(400, f"unknown question {question[:60]!r}")
        index, row = by_question[question]
        if "flaky" in flags:
            # The first request of each turn of every third task fails once; its retry succeeds.
            # Keyed by task and turn, not by a global request count: with concurrent tasks a global
            # count could hand one task's retries the failing slots again and again.
            turn = (model, question, len(messages))
            if index % 3 == 0 and turn not in failed_once:
                failed_once.add(turn)
                if len(failed_once) % 2:
                    return _error(503, "overloaded")
                return _error(429, "rate limited", {"Retry-After": "0"})
        calls = row["reference"]["calls"]
        expected = [m["content"] for m in row["messages"] if m["role"] == "tool"]
        seen = [m["content"] for m in messages if m["role"] == "tool"]
        k = len(seen)
        if seen != expected[:k]:
            message: dict[str, Any] = {"role": "assistant", "content": "\\boxed{tool result mismatch}"}
            finish = "stop"
        elif k < len(calls):
            name, arguments = calls[k]["name"], calls[k]["arguments"]
            structured = style == "structured" or (style == "mixed" and (index + k) % 2 == 0)
            if structured:
                call = {
                    "id": f"srv_{next(ids)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
                message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
            else:
                text = json.dumps({"name": name, "arguments": arguments})
                message, finish = (
                    {
                        "role": "assistant",
                        "content": f"I will call {name}.\n<tool_call>\n{text}\n</tool_call>",
                    },
                    "stop",
                )
        else:
            answer = "999999999" if "wrong3" in flags and index % 3 == 2 else row["ground_truth"]
            message, finish = {"role": "assistant", "content": f"The answer is \\boxed{{{answer}}}."}, "stop"
        return {
            "id": f"chatcmpl-{next(ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the split's JSONL file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    lines = Path(args.data).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    uvicorn.run(create_app(rows, args.api_key), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
