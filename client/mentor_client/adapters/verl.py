"""The reward service as a verl custom reward function.

Point verl at this file and function:

    reward.custom_reward_function.path=<site-packages>/mentor_client/adapters/verl.py
    reward.custom_reward_function.name=compute_score        # async; or compute_score_sync

and configure by environment (see `EnvSettings`): MENTOR_REWARD_URL, MENTOR_REWARD_PRESET,
MENTOR_REWARD_API_KEY, MENTOR_REWARD_TOOLSET, ...

The reference travels with the sample: `ground_truth` is the answer, or a JSON object (dict or
string) `{"ground_truth": ..., "teacher_tools": [...] | "reference": {...}}`; `extra_info` may
carry `reference`, `teacher_tools` and `finished` as well.

What comes back is `{"score": reward, <component>: value, ...}` with the same keys on every
call — the components of the configured spec, asked of the service once per process — since
verl requires identical keys per sample. verl needs floats, so a component that does not apply
to a sample is `nan`, not 0.0: a zero would drag the logged component means down with samples
that were never scored on it; aggregate those columns with `nanmean`. An item the service
cannot score raises `ItemScoringError` (a number would be invented), unless
MENTOR_REWARD_ON_ERROR names the score to give it.

verl decodes `solution_str` without special tokens, so the EOS token is not in the text. By
default the response is taken as finished (MENTOR_REWARD_FINISHED=assume); `extra_info
["finished"]` overrides that per sample, and MENTOR_REWARD_FINISHED=detect lets the service
look for the EOS token in the text (for reward managers that keep special tokens).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from collections.abc import Mapping
from typing import Any

from mentor_client._client import AsyncRewardClient, RewardClient
from mentor_client.adapters._common import EnvSettings, PerLoop, build_item, label_fields
from mentor_client.exceptions import ItemScoringError, ResponseValidationError
from mentor_client.local import LocalBackend
from mentor_client.protocol import ErrorInfo, ScoreItem, ScoreResponse

__all__ = ["compute_score", "compute_score_sync"]

logger = logging.getLogger(__name__)


class _Service:
    """The backends and spec facts for one set of environment settings, built on first use."""

    def __init__(self, settings: EnvSettings) -> None:
        self.settings = settings
        self.spec = settings.spec_dict()
        self.preset = None if self.spec is not None else settings.preset
        self.async_clients: PerLoop[AsyncRewardClient] = PerLoop(self._async_client)
        self._sync_client: RewardClient | None = None
        self._local: LocalBackend | None = None
        self._components: list[str] | None = None
        self._lock = threading.Lock()

    def _async_client(self) -> AsyncRewardClient:
        s = self.settings
        return AsyncRewardClient(s.base_urls, api_key=s.api_key, timeout=s.timeout)

    def sync_client(self) -> RewardClient:
        with self._lock:
            if self._sync_client is None:
                s = self.settings
                self._sync_client = RewardClient(s.base_urls, api_key=s.api_key, timeout=s.timeout)
            return self._sync_client

    def local(self) -> LocalBackend:
        with self._lock:
            if self._local is None:
                self._local = LocalBackend()
            return self._local

    def spec_params(self) -> dict[str, Any]:
        """The environment's reward: its components are the keys of every answer."""
        return {"preset": self.preset, "spec": self.spec}

    def components_known(self) -> list[str] | None:
        return self._components

    def remember_components(self, spec: Mapping[str, Any]) -> list[str]:
        components = spec.get("components")
        if not isinstance(components, Mapping) or not components:
            raise ResponseValidationError("the resolved spec lists no components")
        self._components = [str(c) for c in components]
        return self._components


_SERVICES: dict[EnvSettings, _Service] = {}
_SERVICES_LOCK = threading.Lock()


def _service() -> _Service:
    settings = EnvSettings.from_env(finished_default="assume")
    with _SERVICES_LOCK:
        service = _SERVICES.get(settings)
        if service is None:
            service = _SERVICES[settings] = _Service(settings)
        return service


def _item(
    service: _Service, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None
) -> tuple[ScoreItem, str | None, str | None]:
    fields = label_fields(ground_truth)
    extra = extra_info or {}
    finished = extra.get("finished")
    if not isinstance(finished, bool):
        finished = True if service.settings.finished == "assume" else None
    item = build_item(
        solution_str,
        ground_truth=fields.get("ground_truth"),
        reference=fields.get("reference") if fields.get("reference") is not None else extra.get("reference"),
        teacher_tools=(
            fields.get("teacher_tools") if fields.get("teacher_tools") is not None else extra.get("teacher_tools")
        ),
        finished=finished,
        where="verl sample",
    )
    return item, fields.get("preset"), fields.get("toolset")


def _result(service: _Service, response: ScoreResponse, components: list[str]) -> dict[str, float]:
    if len(response.results) != 1:
        raise ResponseValidationError(f"sent 1 item, got {len(response.results)} results")
    result = response.results[0]
    if result.error is not None or result.reward is None:
        fallback = service.settings.on_error
        if fallback is None or result.error is None:
            raise ItemScoringError(0, result.error or _no_reward())
        logger.warning("item could not be scored (%s); giving it %s", result.error.message, fallback)
        return {"score": fallback, **{name: math.nan for name in components}}
    out = {"score": float(result.reward)}
    for name in components:
        value = result.components.get(name)
        out[name] = math.nan if value is None else float(value)
    return out


def _no_reward() -> ErrorInfo:
    return ErrorInfo(type="no_reward", message="the service returned no reward and no error")


async def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's reward function (async): `{"score": reward, <component>: value|nan, ...}`.

    Raises:
        ItemScoringError: the service could not score this sample (and MENTOR_REWARD_ON_ERROR
            is unset).
        RetriesExhaustedError: the service could not be reached.
    """
    service = _service()
    item, preset, toolset = _item(service, solution_str, ground_truth, extra_info)
    params = _params(service, preset, toolset)
    if service.settings.local:
        backend = service.local()
        response = await asyncio.to_thread(functools.partial(backend.score, [item], **params))
        components = service.components_known() or service.remember_components(
            (await asyncio.to_thread(functools.partial(backend.validate_spec, **service.spec_params()))).spec
        )
    else:
        client = service.async_clients.get()
        response = await client.score([item], **params)
        components = service.components_known() or service.remember_components(
            (await client.validate_spec(**service.spec_params())).spec
        )
    return _result(service, response, components)


def compute_score_sync(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """The blocking twin of `compute_score`, for verl's synchronous reward managers."""
    service = _service()
    item, preset, toolset = _item(service, solution_str, ground_truth, extra_info)
    params = _params(service, preset, toolset)
    backend = service.local() if service.settings.local else service.sync_client()
    response = backend.score([item], **params)
    components = service.components_known() or service.remember_components(
        backend.validate_spec(**service.spec_params()).spec
    )
    return _result(service, response, components)


def _params(service: _Service, preset: str | None, toolset: str | None) -> dict[str, Any]:
    # A per-sample preset/toolset (in the label) wins over the environment's. The component
    # keys come from the environment's spec, so a per-sample preset must share its components.
    spec = service.spec
    return {
        "preset": preset if preset is not None else (None if spec is not None else service.preset),
        "spec": None if preset is not None else spec,
        "toolset": toolset if toolset is not None else service.settings.toolset,
    }
