"""Fuzz the live service from its own OpenAPI schema (schemathesis): no 500s, one error body.

Every operation gets a bounded number of generated requests, schema-conforming and
schema-violating, sent over HTTP to a real uvicorn process. The process has no API key:
schema-violating cases include "no Authorization header", which a test that always sends
the key would turn into false alarms (auth has its own tests). Each answer must
not be a 5xx, must use a status code and content type the schema declares, must match the
declared response schema, a schema-violating request must be refused, and every 4xx/5xx
body must be the service's `ErrorResponse`. Kept under a minute by `MAX_EXAMPLES`.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from service_process import ServiceProcess, free_port, service_env

from mentor_client.protocol import ErrorResponse

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # A small body limit and item cap keep generated batches cheap; recording on exercises /v1/records.
    tmp = tmp_path_factory.mktemp("fuzz")
    process = ServiceProcess(
        free_port(),
        service_env(
            workers="2",
            max_items="64",
            item_timeout_s="5",
            record_backend="sqlite",
            record_path=str(tmp / "records.sqlite3"),
        ),
        tmp / "service.log",
    ).start()
    yield process
    process.stop()


def _operations(service: ServiceProcess) -> list[Any]:
    schema = schemathesis.openapi.from_url(service.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_fuzz_every_operation(fuzzed_service: ServiceProcess, mode: GenerationMode) -> None:
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    seen_errors: list[int] = []
    for operation in _operations(fuzzed_service):

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: Any) -> None:
            response = case.call(base_url=fuzzed_service.base_url, timeout=30)
            case.validate_response(response, checks=checks)
            if response.status_code >= 400:
                seen_errors.append(response.status_code)
                ErrorResponse.model_validate_json(response.content)

        try:
            exercise()
        except Unsatisfiable:
            # Some operations have no invalid form (GET /v1/presets; any string names a preset).
            assert mode is GenerationMode.NEGATIVE
    if mode is GenerationMode.NEGATIVE:
        assert seen_errors, "schema-violating requests must have been refused"
    assert not any(status >= 500 for status in seen_errors)
