"""End-to-end fixtures: the reward service as a real uvicorn process on a free port.

`start_service(**settings)` starts a `ServiceProcess` (see service_process.py) and returns it
once `/readyz` answers; every process still running at the end of the test is stopped. The
`service` fixture is one default instance shared by a module's tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from service_process import DATA, ServiceProcess, free_port, service_env


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(port: int | None = None, **settings: Any) -> ServiceProcess:
        service = ServiceProcess(
            port or free_port(), service_env(**settings), tmp_path / f"service-{len(started)}.log"
        )
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A default service shared by a module's tests."""
    log = tmp_path_factory.mktemp("service") / "service.log"
    process = ServiceProcess(free_port(), service_env(), log).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def parity_items() -> list[dict[str, Any]]:
    with (DATA / "mentor_seed_public.jsonl").open() as handle:
        cases = [json.loads(line) for line in handle if line.strip()]
    return [
        {
            "completion": c["completion"],
            "ground_truth": c["ground_truth"],
            "teacher_tools": c["teacher_tools"],
        }
        for c in cases
    ]
