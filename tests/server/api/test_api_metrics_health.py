"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from _service_helpers import assert_error, wire_item
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mentor_server.api.pool import ScoringPool


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"


def test_readiness_is_a_503_with_the_error_body_before_the_workers_run(make_client: Any) -> None:
    assert_error(make_client(lifespan=False).get("/readyz"), 503, "not_ready")


def test_workers_that_cannot_start_give_503s_not_a_fork_storm(make_client: Any, tmp_path: Any) -> None:
    missing = str(tmp_path / "gone.yaml")  # the worker initializer cannot load it
    pool = ScoringPool(1, toolset_files=[missing])
    service = make_client(pool=pool)
    deadline = time.monotonic() + 20
    while pool.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    error = assert_error(service.get("/readyz"), 503, "not_ready")
    assert "failed to start" in error["message"]
    for _ in range(3):
        assert_error(
            service.post("/v1/score", json={"preset": "mentor", "items": [{"completion": "x"}]}), 503, "not_ready"
        )
    assert pool.replacements == 0


def test_metrics_count_requests_items_and_component_means(make_client: Any, parity_cases: list[dict[str, Any]]) -> None:
    service = make_client()
    items = [wire_item(c) for c in parity_cases[:20]]
    body = service.post("/v1/score", json={"preset": "mentor", "items": items}).json()
    service.post("/v1/score", json={"preset": "nope", "items": []})
    service.get("/v1/presets/x1")
    service.get("/v1/presets/x2")
    samples = _samples(service.get("/metrics").text)
    assert samples[("mentor_items_scored_total", (("preset", "mentor"),))] == 20
    assert samples[("mentor_http_requests_total", (("method", "POST"), ("route", "/v1/score"), ("status", "200")))] == 1
    assert samples[("mentor_http_requests_total", (("method", "POST"), ("route", "/v1/score"), ("status", "400")))] == 1
    # Path parameters are folded into the route template: no label per preset name tried.
    assert (
        samples[
            (
                "mentor_http_requests_total",
                (("method", "GET"), ("route", "/v1/presets/{name}"), ("status", "404")),
            )
        ]
        == 2
    )
    assert samples[("mentor_http_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/score")))] == 2
    outcome_sum = samples[("mentor_component_score_sum", (("component", "outcome"),))]
    outcome_count = samples[("mentor_component_score_count", (("component", "outcome"),))]
    assert outcome_sum / outcome_count == body["stats"]["component_means"]["outcome"]
    assert (
        samples[("mentor_batch_component_mean", (("component", "outcome"),))]
        == body["stats"]["component_means"]["outcome"]
    )
    reward_mean = (
        samples[("mentor_reward_sum", (("preset", "mentor"),))]
        / samples[("mentor_reward_count", (("preset", "mentor"),))]
    )
    assert abs(reward_mean - body["stats"]["mean_reward"]) < 1e-12
