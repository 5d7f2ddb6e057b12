"""The reward service as an OpenRLHF reward function file.

OpenRLHF accepts a Python file in place of a reward URL and calls its
`reward_func(queries, prompts, labels, **kwargs)`:

    --reward.remote_url <site-packages>/mentor_client/adapters/openrlhf_reward_func.py

Configure by environment (see `EnvSettings`): MENTOR_REWARD_URL, MENTOR_REWARD_PRESET,
MENTOR_REWARD_API_KEY, MENTOR_REWARD_TOOLSET, ... (`--reward.remote_url http://...` against the
service's `/v1/openrlhf` endpoint works too; this file adds the client's retries, chunking and
replica failover.)

Each query is the prompt followed by the response, decoded *with* special tokens, so the
completion scored is the query minus its prompt, and the service finds the EOS token in the
text. `labels[i]` is the ground truth or a JSON object carrying the reference
(`{"ground_truth", "teacher_tools" | "reference", "preset", "toolset"}`).

Returns `{"rewards", "scores", "extra_logs": {component: [...]}}` as torch tensors when torch
is importable (OpenRLHF expects tensors), else lists. A component that does not apply is
`nan`; an item that cannot be scored raises `ItemScoringError` unless MENTOR_REWARD_ON_ERROR
gives its score. This file imports the package absolutely, since OpenRLHF loads it by path.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

from mentor_client._client import RewardClient
from mentor_client.adapters._common import EnvSettings, build_item, label_fields
from mentor_client.exceptions import ItemScoringError, ResponseValidationError
from mentor_client.local import LocalBackend
from mentor_client.protocol import ErrorInfo, ScoreItem

__all__ = ["reward_func"]

logger = logging.getLogger(__name__)

_BACKENDS: dict[EnvSettings, RewardClient | LocalBackend] = {}
_COMPONENTS: dict[EnvSettings, list[str]] = {}
_LOCK = threading.Lock()


def _backend(settings: EnvSettings) -> RewardClient | LocalBackend:
    with _LOCK:
        backend = _BACKENDS.get(settings)
        if backend is None:
            if settings.local:
                backend = LocalBackend()
            else:
                backend = RewardClient(settings.base_urls, api_key=settings.api_key, timeout=settings.timeout)
            _BACKENDS[settings] = backend
        return backend


def completion_of(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query (prompt + response).

    The decoded query can differ from the prompt at its start (a BOS token decoded in front),
    so the prompt is searched for, not only matched as a prefix; without it the whole query is
    scored.
    """
    if prompt and query.startswith(prompt):
        return query[len(prompt) :]
    at = query.find(prompt) if prompt else -1
    if at >= 0:
        return query[at + len(prompt) :]
    return query


def _finished(settings: EnvSettings) -> bool | None:
    return True if settings.finished == "assume" else None


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kwargs: Any) -> dict[str, Any]:
    """Score a batch for OpenRLHF.

    Returns:
        `{"rewards": [...], "scores": [...], "extra_logs": {component: [...]}}` (tensors when
        torch is installed); `scores` equals `rewards` (OpenRLHF filters groups by it).

    Raises:
        ItemScoringError: an item could not be scored and MENTOR_REWARD_ON_ERROR is unset.
        RetriesExhaustedError: the service could not be reached.
    """
    n = len(queries)
    if len(prompts) not in (0, n) or len(labels) not in (0, n):
        raise ValueError(f"got {n} queries, {len(prompts)} prompts and {len(labels)} labels")
    settings = EnvSettings.from_env()
    backend = _backend(settings)
    spec = settings.spec_dict()
    env_preset = None if spec is not None else settings.preset

    # Items may name their own preset/toolset; each distinct pair is one (chunked) request.
    groups: dict[tuple[str | None, str | None], list[tuple[int, ScoreItem]]] = {}
    for i, query in enumerate(queries):
        fields = label_fields(labels[i] if labels else None)
        prompt = prompts[i] if prompts else ""
        item = build_item(
            completion_of(query, prompt),
            ground_truth=fields.get("ground_truth"),
            reference=fields.get("reference"),
            teacher_tools=fields.get("teacher_tools"),
            finished=_finished(settings),
            where=f"query {i}",
        )
        groups.setdefault((fields.get("preset"), fields.get("toolset")), []).append((i, item))

    components = _COMPONENTS.get(settings)
    if components is None:
        resolved = backend.validate_spec(preset=env_preset, spec=spec)
        raw = resolved.spec.get("components")
        if not isinstance(raw, dict) or not raw:
            raise ResponseValidationError("the resolved spec lists no components")
        components = _COMPONENTS[settings] = [str(c) for c in raw]

    rewards: list[float] = [math.nan] * n
    extra: dict[str, list[float]] = {name: [math.nan] * n for name in components}
    for (preset, toolset), members in groups.items():
        response = backend.score(
            [item for _, item in members],
            preset=preset if preset is not None else env_preset,
            spec=None if preset is not None else spec,
            toolset=toolset if toolset is not None else settings.toolset,
        )
        if len(response.results) != len(members):
            raise ResponseValidationError(f"sent {len(members)} items, got {len(response.results)} results")
        for (index, _), result in zip(members, response.results, strict=True):
            if result.error is not None or result.reward is None:
                error = result.error or ErrorInfo(type="no_reward", message="no reward and no error")
                if settings.on_error is None or result.error is None:
                    raise ItemScoringError(index, error)
                logger.warning(
                    "query %d could not be scored (%s); giving it %s", index, error.message, settings.on_error
                )
                rewards[index] = settings.on_error
                continue
            rewards[index] = float(result.reward)
            for name in components:
                value = result.components.get(name)
                extra[name][index] = math.nan if value is None else float(value)
    return _as_output(rewards, extra)


def _as_output(rewards: list[float], extra: dict[str, list[float]]) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"rewards": rewards, "scores": list(rewards), "extra_logs": extra}
    return {
        "rewards": torch.tensor(rewards, dtype=torch.float32),
        "scores": torch.tensor(rewards, dtype=torch.float32),
        "extra_logs": {name: torch.tensor(values, dtype=torch.float32) for name, values in extra.items()},
    }
