"""QA judge modes over HTTP: a spec with `judge.mode` validates, scores, and names its mistakes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

QA_F1_SPEC = {
    "components": {"outcome": {"weight": 1.0, "options": {"answer_from": "boxed_or_final", "judge": {"mode": "qa_f1"}}}}
}


def test_a_qa_f1_spec_scores_token_f1(client: TestClient) -> None:
    items = [
        {"completion": "Barack Obama Jr.<|im_end|>", "ground_truth": ["Obama", "Barack Obama"]},
        {"completion": "\\boxed{the Beatles}<|im_end|>", "ground_truth": "Beatles"},
    ]
    response = client.post("/v1/score", json={"spec": QA_F1_SPEC, "items": items})
    assert response.status_code == 200, response.text
    outcomes = [result["components"]["outcome"] for result in response.json()["results"]]
    assert outcomes == [pytest.approx(0.8), 1.0]


def test_a_bad_judge_mode_names_its_full_path(client: TestClient) -> None:
    spec = {"components": {"outcome": {"weight": 1.0, "options": {"judge": {"mode": "squad"}}}}}
    response = client.post("/v1/specs/validate", json={"spec": spec})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "components.outcome.options.judge.mode"
