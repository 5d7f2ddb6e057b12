"""`reasons=False` through the SDK: sent only when asked for (a server older than the field
refuses a request that names it), and the local backend answers as the service does."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mentor_client import LocalBackend, RewardClient


def _capture() -> tuple[list[dict[str, Any]], httpx.MockTransport]:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        results = [{"reward": 1.0, "components": {}} for _ in body["items"]]
        stats = {"n_items": len(results), "n_errors": 0, "mean_reward": 1.0}
        return httpx.Response(200, json={"results": results, "spec_hash": "h", "stats": stats})

    return bodies, httpx.MockTransport(handler)


def test_the_field_goes_out_only_when_it_is_false() -> None:
    bodies, transport = _capture()
    with RewardClient("http://svc", transport=transport) as client:
        client.score([{"completion": "a"}], preset="mentor")
        answer = client.score([{"completion": "b"}], preset="mentor", reasons=False)
    assert "reasons" not in bodies[0]
    assert bodies[1]["reasons"] is False
    assert answer.results[0].reason == ""  # absent in the answer: the model's default


@pytest.mark.parametrize("reasons", [True, False])
def test_the_local_backend_answers_as_the_service(reasons: bool) -> None:
    backend = LocalBackend(item_timeout_s=None)
    items: list[dict[str, Any]] = [
        {"completion": "The answer is \\boxed{5}.<|im_end|>", "ground_truth": "5"},
        {"completion": 5, "ground_truth": "5"},  # malformed: an error with its message
    ]
    answer = backend.score(items, preset="flexible", reasons=reasons)
    full = backend.score(items, preset="flexible")
    assert [r.reward for r in answer.results] == [r.reward for r in full.results]
    assert bool(answer.results[0].reason) is reasons
    error = answer.results[1].error
    assert error is not None and error.message
