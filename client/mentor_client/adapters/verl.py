"""The reward service as a verl custom reward function (the simple path).

Point verl at this module and function (`pkg://` works with the editable install too):

    reward.custom_reward_function.path=pkg://mentor_client.adapters.verl
    reward.custom_reward_function.name=compute_score        # async; or compute_score_sync

and configure by environment (see `EnvSettings`): MENTOR_REWARD_URL, MENTOR_REWARD_PRESET,
MENTOR_REWARD_API_KEY, MENTOR_REWARD_TOOLSET, ...

verl's reward managers call this once per sample, and verl decodes `solution_str` without
special tokens, so this path cannot see whether a response was truncated: it takes every
response as finished (MENTOR_REWARD_FINISHED=assume) unless `extra_info["finished"]` or the
label's `finished` says otherwise. `MentorRewardManager` (`verl_manager.py`) is the full path:
one request per batch, the finish state read from the token ids, tool-call rates.

The reference travels with the sample: `ground_truth` is the answer, or an object (JSON text,
the robust form in parquet, or a dict) `{"ground_truth": ..., "teacher_tools": [...] |
"reference": {...}}`; `extra_info` may carry `reference`, `teacher_tools` and `finished` too.

What comes back is `{"score": reward, <component>: value, ...}` with the same keys on every
call — the components of the configured spec, asked of the service once per process — since
verl requires identical keys per sample. A component that does not apply to a sample is
`None`: verl's metric code drops `None` before taking means. An item the service cannot score
raises `ItemScoringError` naming the sample (a number would be invented), unless
MENTOR_REWARD_ON_ERROR names the score to give it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Mapping
from typing import Any

from mentor_client._client import AsyncRewardClient, RewardClient
from mentor_client.adapters._common import EnvSettings, PerLoop, RowScoringError, build_item, label_fields
from mentor_client.exceptions import ResponseValidationError
from mentor_client.local import LocalBackend
from mentor_client.protocol import ErrorInfo, ScoreItem, ScoreResponse

__all__ = ["compute_score", "compute_score_sync"]

logger = logging.getLogger(__name__)


class _Service:
    """The backends and spec facts for one set of environment settings, built on first use."""

    def __init__(self, settings: EnvSettings) -> None:
        self.settings = settings
        self.spec = settings.spec_dict()
        # The service has no default reward; these adapters' documented one is `mentor`.
        self.preset = None if self.spec is not None else (settings.preset or "mentor")
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


def sample_name(data_source: Any, extra_info: Mapping[str, Any] | None) -> str:
    """How errors name a verl sample: its data source and `extra_info["index"]` when present."""
    index = (extra_info or {}).get("index")
    where = f"verl sample {index}" if index is not None else "verl sample"
    return f"{where} ({data_source})" if data_source else where


def _item(
    service: _Service, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None, where: str
) -> tuple[ScoreItem, dict[str, Any]]:
    fields = label_fields(ground_truth, f"{where}: ground_truth")
    extra = extra_info or {}
    finished = extra.get("finished")
    if not isinstance(finished, bool):
        finished = fields.get("finished")
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
        where=where,
    )
    return item, fields


def _result(service: _Service, response: ScoreResponse, components: list[str], where: str) -> dict[str, float | None]:
    if len(response.results) != 1:
        raise ResponseValidationError(f"sent 1 item, got {len(response.results)} results")
    result = response.results[0]
    if result.error is not None or result.reward is None:
        fallback = service.settings.on_error
        error = result.error or _no_reward()
        if fallback is None or result.error is None:
            logger.error("%s could not be scored: %s", where, error.message)
            raise RowScoringError(0, error, where)
        logger.warning("%s could not be scored (%s); giving it %s", where, error.message, fallback)
        return {"score": fallback, **dict.fromkeys(components)}
    out: dict[str, float | None] = {"score": float(result.reward)}
    for name in components:
        value = result.components.get(name)
        out[name] = None if value is None else float(value)
    return out


def _no_reward() -> ErrorInfo:
    return ErrorInfo(type="no_reward", message="the service returned no reward and no error")


async def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float | None]:
    """verl's reward function (async): `{"score": reward, <component>: value | None, ...}`.

    Raises:
        ItemScoringError: the service could not score this sample (and MENTOR_REWARD_ON_ERROR
            is unset).
        ValueError: the sample's reference is malformed (the message names the sample).
        RetriesExhaustedError: the service could not be reached.
    """
    service = _service()
    where = sample_name(data_source, extra_info)
    item, fields = _item(service, solution_str, ground_truth, extra_info, where)
    params = _params(service, fields)
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
    return _result(service, response, components, where)


def compute_score_sync(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float | None]:
    """The blocking twin of `compute_score`, for verl's synchronous reward managers."""
    service = _service()
    where = sample_name(data_source, extra_info)
    item, fields = _item(service, solution_str, ground_truth, extra_info, where)
    params = _params(service, fields)
    backend = service.local() if service.settings.local else service.sync_client()
    response = backend.score([item], **params)
    components = service.components_known() or service.remember_components(
        backend.validate_spec(**service.spec_params()).spec
    )
    return _result(service, response, components, where)


def _params(service: _Service, fields: Mapping[str, Any]) -> dict[str, Any]:
    # A per-sample preset/toolset (in the label) wins over the environment's. The component
    # keys come from the environment's spec, so a per-sample preset must share its components.
    spec = service.spec
    preset, toolset = fields.get("preset"), fields.get("toolset")
    params: dict[str, Any] = {
        "preset": preset if preset is not None else (None if spec is not None else service.preset or "mentor"),
        "spec": None if preset is not None else spec,
        "toolset": toolset if toolset is not None else service.settings.toolset,
    }
    if fields.get("eos_tokens") is not None:
        params["eos_tokens"] = fields["eos_tokens"]
    return params
