"""Fixtures for the client SDK tests: the fake service, a sleep recorder, sync/async clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from client_fakes import FakeService, Runner, SleepRecorder


@pytest.fixture
def sleep() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest, sleep: SleepRecorder) -> Callable[..., Runner]:
    """`make_client(service, **client_kwargs)` -> a Runner of the parametrised kind."""

    def make(service: FakeService, **kwargs: Any) -> Runner:
        return Runner(request.param, service, sleep, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _no_service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's MENTOR_REWARD_* variables must not change what the tests see.
    for name in (
        "MENTOR_REWARD_URL",
        "MENTOR_REWARD_API_KEY",
        "MENTOR_REWARD_TIMEOUT",
        "MENTOR_REWARD_PRESET",
        "MENTOR_REWARD_SPEC",
        "MENTOR_REWARD_TOOLSET",
        "MENTOR_REWARD_ON_ERROR",
        "MENTOR_REWARD_FINISHED",
        "MENTOR_REWARD_LOCAL",
    ):
        monkeypatch.delenv(name, raising=False)
