"""`reasons: false` on POST /v1/score: the answer leaves each result's reason text out, and
nothing else changes — rewards, components and stats are the same, an item's error keeps its
message, and the score record keeps every reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _service_helpers import wire_item
from fastapi.testclient import TestClient

from mentor_client.protocol import ScoreResponse


def _body(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"preset": "mentor", "items": items, "run_id": "reasons", **extra}


def test_reasons_false_leaves_only_the_reason_text_out(
    make_client: Any, parity_cases: list[dict[str, Any]], tmp_path: Path
) -> None:
    service: TestClient = make_client(record_backend="sqlite", record_path=tmp_path / "r.sqlite3")
    items: list[Any] = [wire_item(c) for c in parity_cases[:6]]
    items.append({"completion": 7, "ground_truth": "1"})  # a malformed item: its own error
    full = service.post("/v1/score", json=_body(items, step=1))
    thin = service.post("/v1/score", json=_body(items, step=2, reasons=False))
    assert full.status_code == thin.status_code == 200
    full_body, thin_body = full.json(), thin.json()
    assert all(r["reason"] for r in full_body["results"])  # the default is unchanged
    assert all("reason" not in r for r in thin_body["results"])
    for with_reason, without in zip(full_body["results"], thin_body["results"], strict=True):
        assert {k: v for k, v in with_reason.items() if k != "reason"} == without
    assert thin_body["stats"] == full_body["stats"] and thin_body["spec_hash"] == full_body["spec_hash"]
    error = thin_body["results"][-1]["error"]
    assert error["param"] == "items[6].completion" and error["message"]  # the error keeps its message
    assert len(thin.content) < len(full.content)
    # The client reads the thin answer: the reason is "" and everything else is there.
    parsed = ScoreResponse.model_validate_json(thin.content)
    assert [r.reason for r in parsed.results] == [""] * len(items)
    # The record keeps the reasons whichever answer the trainer asked for.
    recorded = service.get("/v1/records", params={"run_id": "reasons", "step": 2}).json()["records"]
    assert [r["reason"] for r in recorded] == [r["reason"] for r in full_body["results"]]


def test_reasons_must_be_a_boolean(client: TestClient, parity_cases: list[dict[str, Any]]) -> None:
    answer = client.post("/v1/score", json=_body([wire_item(parity_cases[0])], reasons="no"))
    assert answer.status_code == 422  # strict: "no" does not quietly mean false
    assert answer.json()["error"]["param"] == "reasons"
