"""The scoring answers, byte for byte: a catalogue of requests and the exact bytes the service
answered them with, kept in `score_golden.json`.

The answer of `/v1/score` (and `/v1/openrlhf`, which shares its scoring path) is built and
serialised by hand-tuned code; this test pins it so that a faster way of building it cannot
change a single byte for any request: plain rollouts, gates (truncated, no answer), components
that do not apply (names-only references), malformed and oversized items, lone surrogates in
model output, `reasons` true and false, request-level errors, and the score record kept for
each. The golden file was written by the code before the answers were built without pydantic
models (`MENTOR_WRITE_GOLDEN=1` rewrites it: only for a deliberate change of the answer).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from _service_helpers import wire_item
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "trainers"))
from trainers_catalogue import CASES

GOLDEN = Path(__file__).resolve().parent / "score_golden.json"
RUN = "golden"


def _catalogue(parity: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(name, path, body): bodies are JSON values, or `str` for raw JSON text sent as is."""
    seed = [wire_item(c) for c in parity[:12]]
    trainer = [{"completion": c.text, **c.label, "finished": c.finished} for c in CASES]
    malformed: list[Any] = [
        {"completion": 7, "ground_truth": "1"},  # not a completion
        {"completion": "x", "ground_truh": "1"},  # a misspelt field
        "not an object",
        {"completion": "y" * 3000, "ground_truth": "1"},  # over max_completion_chars
        {"completion": [{"role": "assistant", "content": "z" * 3000}], "ground_truth": "1"},
        {"completion": "The answer is \\boxed{5}.", "ground_truth": "5", "reference": {"calls": [{"nme": "add"}]}},
        {"completion": "no answer at all<|im_end|>", "ground_truth": "5", "teacher_tools": ["add"]},
        {"completion": "The answer is \\boxed{5}.", "ground_truth": ["5", 5, 5.0], "teacher_tools": []},
        {
            "completion": [
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add", "arguments": "{"}}]},
                {"role": "tool", "content": "5"},
                {"role": "assistant", "content": "\\boxed{5}"},
            ],
            "ground_truth": "5",
            "teacher_tools": ["add"],
        },
    ]
    spec = {
        "toolset": "calculator",
        "components": {"outcome": {"weight": 0.7}, "tool_names": {"weight": 0.2, "options": {"mode": "f1"}}},
    }
    deep: Any = "leaf"
    for _ in range(80):
        deep = [deep]
    surrogate = json.dumps(
        {
            "preset": "mentor",
            "run_id": RUN,
            "step": 9,
            "items": [
                {"completion": '<tool_call>{"name": "ad\ud800d", "arguments": {}}</tool_call>\\boxed{\udfff}'},
                {"completion": "\\boxed{5}", "ground_truth": "5\ud83d", "teacher_tools": ["add"]},
            ],
        },
        ensure_ascii=True,
    )
    return [
        ("seed mentor", "/v1/score", {"preset": "mentor", "items": seed, "run_id": RUN, "step": 1}),
        ("seed mentor no reasons", "/v1/score", {"preset": "mentor", "items": seed, "reasons": False}),
        ("seed mentor-f1", "/v1/score", {"preset": "mentor-f1", "items": seed, "run_id": RUN, "step": 2}),
        ("trainer flexible", "/v1/score", {"preset": "flexible", "items": trainer, "run_id": RUN, "step": 3}),
        ("trainer strict no reasons", "/v1/score", {"preset": "strict", "items": trainer, "reasons": False}),
        (
            "trainer eos",
            "/v1/score",
            {"preset": "flexible", "items": [{**i, "finished": None} for i in trainer], "eos_tokens": ["</s>"]},
        ),
        ("malformed", "/v1/score", {"preset": "mentor", "items": malformed, "run_id": RUN, "step": 4}),
        ("malformed no reasons", "/v1/score", {"preset": "mentor", "items": malformed, "reasons": False}),
        ("inline spec", "/v1/score", {"spec": spec, "items": seed[:4] + trainer[:4], "run_id": RUN, "step": 5}),
        ("overrides", "/v1/score", {"preset": "mentor", "overrides": {"components": {}}, "items": seed[:3]}),
        ("empty", "/v1/score", {"preset": "mentor", "items": []}),
        ("surrogates", "/v1/score", surrogate),
        ("no reward", "/v1/score", {"items": seed[:1]}),
        ("unknown field", "/v1/score", {"preset": "mentor", "items": [], "presett": "x"}),
        ("unknown preset", "/v1/score", {"preset": "nope", "items": seed[:1]}),
        ("too many items", "/v1/score", {"preset": "mentor", "items": [seed[0]] * 65}),
        ("too deep", "/v1/score", {"preset": "mentor", "items": [seed[0], {"completion": "x", "extra": deep}]}),
        ("reasons not a boolean", "/v1/score", {"preset": "mentor", "items": [], "reasons": "no"}),
        ("bad step", "/v1/score", {"preset": "mentor", "items": [], "step": 2**64}),
        (
            "openrlhf",
            "/v1/openrlhf?preset=mentor&run_id=golden&step=6",
            {
                "query": [c["completion"] for c in seed[:4]],
                "prompts": [""] * 4,
                "labels": [{"ground_truth": c["ground_truth"], "teacher_tools": c["teacher_tools"]} for c in seed[:4]],
            },
        ),
    ]


def _answers(service: TestClient, parity: list[dict[str, Any]]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for name, path, body in _catalogue(parity):
        content = body if isinstance(body, str) else json.dumps(body)
        response = service.post(path, content=content.encode(), headers={"content-type": "application/json"})
        answers[name] = {"status": response.status_code, "body": response.content.decode("utf-8")}
    records = service.get("/v1/records", params={"run_id": RUN, "limit": 1000})
    assert records.status_code == 200, records.text
    kept = records.json()
    for record in kept["records"]:
        record.pop("created_at")  # the clock, not the answer
    answers["records"] = kept
    return answers


def test_score_answers_are_byte_identical(make_client: Any, parity_cases: list[dict[str, Any]], tmp_path: Path) -> None:
    service: TestClient = make_client(
        record_backend="sqlite",
        record_path=tmp_path / "golden.sqlite3",
        max_items=64,
        max_completion_chars=2000,
    )
    answers = _answers(service, parity_cases)
    if os.environ.get("MENTOR_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(answers, indent=1, ensure_ascii=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert list(answers) == list(golden)
    for name, expected in golden.items():
        assert answers[name] == expected, name
    # The catalogue covers what it claims to (a golden file of nothing but errors would pass).
    bodies = {name: json.loads(a["body"]) for name, a in answers.items() if name != "records"}
    results = [r for name in ("seed mentor", "trainer flexible", "malformed") for r in bodies[name]["results"]]
    assert any(r["gate"] for r in results)
    assert any(r["error"] for r in results) and any(r["reward"] is not None for r in results)
    assert any(None in r["components"].values() for r in results)
    assert all("reason" not in r for r in bodies["seed mentor no reasons"]["results"])
    assert answers["too many items"]["status"] == 413 and answers["too deep"]["status"] == 422
    assert answers["records"]["records"]


def test_answers_without_a_record_are_the_same_bytes(make_client: Any, parity_cases: list[dict[str, Any]]) -> None:
    # Without a record the rows of a `reasons: false` answer are built without reasons at all.
    service: TestClient = make_client(max_items=64, max_completion_chars=2000)
    golden = json.loads(GOLDEN.read_text())
    checked = 0
    for name, path, body in _catalogue(parity_cases):
        if isinstance(body, str) or body.get("run_id") is not None or "?" in path:
            continue  # recorded requests: their answers are the same, but the record is off here
        response = service.post(path, json=body)
        assert {"status": response.status_code, "body": response.content.decode("utf-8")} == golden[name], name
        checked += 1
    assert checked >= 10
