"""Fixtures for the service's unit tests: apps built with `create_app`, driven in-process.

Building an app with its lifespan starts real scoring processes (spawned, ~1 s each), so the
default app is shared by the whole session; tests that need other settings build their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mentor_server.api import ServiceSettings, create_app
from mentor_server.api.pool import ScoringPool

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def parity_cases() -> list[dict[str, Any]]:
    with (DATA / "mentor_seed_public.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """The default service (one scoring process), lifespan running."""
    app = create_app(ServiceSettings(workers=1))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build a service with custom settings (and optionally a custom pool); closed after the test."""
    opened: list[TestClient] = []

    def build(*, lifespan: bool = True, pool: ScoringPool | None = None, **settings: Any) -> TestClient:
        settings.setdefault("workers", 1)
        app = create_app(ServiceSettings(**settings), pool=pool)
        test_client = TestClient(app, raise_server_exceptions=False)
        if lifespan:
            test_client.__enter__()
            opened.append(test_client)
        return test_client

    yield build
    for test_client in opened:
        test_client.__exit__(None, None, None)
