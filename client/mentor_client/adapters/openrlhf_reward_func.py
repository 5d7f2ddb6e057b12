"""The reward service as an OpenRLHF reward function file.

OpenRLHF (0.11) accepts a Python file in place of a reward URL and calls its
`reward_func(queries, prompts, labels)` — one sample per call, in a thread:

    --reward.remote_url "$(python -c 'import mentor_client.adapters.openrlhf_reward_func as m; print(m.__file__)')"

Configure by environment (see `EnvSettings`): MENTOR_REWARD_URL, MENTOR_REWARD_PRESET,
MENTOR_REWARD_API_KEY, MENTOR_REWARD_TOOLSET, MENTOR_REWARD_EOS_TOKENS, ... (`--reward.remote_url
http://...` against the service's `/v1/openrlhf` endpoint gives the same numbers; this file adds
the client's authentication, retries and replica failover.)

Each query is the prompt followed by the response, decoded *with* special tokens, so the
completion scored is the query minus its prompt, and the service finds the model's EOS token in
the text: name it with MENTOR_REWARD_EOS_TOKENS (`</s>`, or a JSON list) or the label's
`eos_tokens`, else the spec's own EOS token is looked for. `labels[i]` is the ground truth or an
object (JSON text) carrying the reference: `{"ground_truth", "teacher_tools" | "reference",
"preset", "toolset", "finished", "eos_tokens"}`.

Returns `{"rewards", "scores", "extra_logs"}` as torch tensors when torch is importable, else
lists:
- `rewards`: the spec's reward;
- `scores`: the reward mapped onto [0, 1] by the spec's reward range (OpenRLHF's dynamic
  filtering compares them with its [0, 1] range);
- `extra_logs`, the same keys on every call: each component `c` of the configured spec, and
  `c/applicable` (1.0 where `c` applies to the sample, else 0.0, and then `c` is 0.0), and
  `item_error` (0.0). OpenRLHF averages every key with a plain `.mean()`, which cannot skip a
  value: NaN would poison the step's metric and a bare 0.0 would bias it, so the pair is logged
  and `mean(c) / mean(c/applicable)` is the component's mean over the samples it applies to.

An item the service cannot score raises `RowScoringError` naming the query and its label, after
logging it at ERROR (OpenRLHF itself logs reward failures at INFO only), unless
MENTOR_REWARD_ON_ERROR gives its reward (then `item_error` is 1.0 for it). This file imports the
package absolutely, since OpenRLHF loads it by path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from mentor_client._client import RewardClient
from mentor_client.adapters._common import EnvSettings, RowScoringError, build_item, label_fields
from mentor_client.exceptions import ResponseValidationError
from mentor_client.local import LocalBackend
from mentor_client.protocol import ErrorInfo, ItemResult, ScoreItem

__all__ = ["reward_func", "unit_score"]

logger = logging.getLogger(__name__)

_BACKENDS: dict[EnvSettings, RewardClient | LocalBackend] = {}
_COMPONENTS: dict[EnvSettings, list[str]] = {}
_RANGES: dict[tuple[EnvSettings, str | None], tuple[float, float]] = {}
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


def unit_score(reward: float, reward_range: tuple[float, float]) -> float:
    """`reward` mapped onto [0, 1] by the spec's reward range (OpenRLHF's `scores`)."""
    low, high = reward_range
    if high <= low:
        return 0.0
    return min(max((reward - low) / (high - low), 0.0), 1.0)


def extra_log_values(result: ItemResult | None, components: Sequence[str]) -> dict[str, float]:
    """One sample's `extra_logs`: every component with its `/applicable` flag, and `item_error`.

    `result` None means the sample could not be scored. The same keys come back for every sample.
    """
    logs: dict[str, float] = {}
    for name in components:
        value = None if result is None or result.error is not None else result.components.get(name)
        logs[name] = 0.0 if value is None else float(value)
        logs[f"{name}/applicable"] = 0.0 if value is None else 1.0
    logs["item_error"] = 1.0 if result is None or result.error is not None else 0.0
    return logs


def _where(index: int, label: Any) -> str:
    text = label if isinstance(label, str) else repr(label)
    return f"query {index} (label {text[:120]!r})"


def _reward_range(
    settings: EnvSettings, backend: RewardClient | LocalBackend, preset: str | None
) -> tuple[float, float]:
    key = (settings, preset)
    known = _RANGES.get(key)
    if known is not None:
        return known
    if preset is None:
        # An inline spec: the range comes with its resolution (a service that reports it).
        resolved = backend.validate_spec(spec=settings.spec_dict())
        reported = getattr(resolved, "reward_range", None)
        if reported is None:
            raise ValueError(
                "OpenRLHF's scores must lie in [0, 1], and this service does not report the reward range of an "
                "inline spec (MENTOR_REWARD_SPEC); use a preset"
            )
        found = (float(reported[0]), float(reported[1]))
    else:
        ranges = {p.name: p.reward_range for p in backend.presets().presets}
        if preset not in ranges:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(ranges))}")
        found = (float(ranges[preset][0]), float(ranges[preset][1]))
    _RANGES[key] = found
    return found


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kwargs: Any) -> dict[str, Any]:
    """Score a batch for OpenRLHF.

    Returns:
        `{"rewards": [...], "scores": [...], "extra_logs": {key: [...]}}` (tensors when torch is
        installed); see the module docstring for what each holds.

    Raises:
        RowScoringError: an item could not be scored and MENTOR_REWARD_ON_ERROR is unset.
        ValueError: a malformed label (the message names the query and the field).
        RetriesExhaustedError: the service could not be reached.
    """
    n = len(queries)
    if len(prompts) not in (0, n) or len(labels) not in (0, n):
        raise ValueError(f"got {n} queries, {len(prompts)} prompts and {len(labels)} labels")
    settings = EnvSettings.from_env()
    backend = _backend(settings)
    spec = settings.spec_dict()
    env_preset = None if spec is not None else (settings.preset or "mentor")

    # Items may name their own preset/toolset/EOS; each distinct triple is one (chunked) request.
    groups: dict[tuple[str | None, str | None, tuple[str, ...] | None], list[tuple[int, ScoreItem]]] = {}
    for i, query in enumerate(queries):
        label = labels[i] if labels else None
        where = _where(i, label)
        try:
            fields = label_fields(label, f"{where}: label")
            item = build_item(
                completion_of(query, prompts[i] if prompts else ""),
                ground_truth=fields.get("ground_truth"),
                reference=fields.get("reference"),
                teacher_tools=fields.get("teacher_tools"),
                finished=fields["finished"] if fields.get("finished") is not None else _finished(settings),
                where=where,
            )
        except (ValueError, TypeError) as exc:
            logger.error("OpenRLHF reward: %s", exc)
            raise
        eos = fields.get("eos_tokens") or settings.eos_tokens
        groups.setdefault((fields.get("preset"), fields.get("toolset"), tuple(eos) if eos else None), []).append(
            (i, item)
        )

    components = _COMPONENTS.get(settings)
    if components is None:
        resolved = backend.validate_spec(preset=env_preset, spec=spec)
        raw = resolved.spec.get("components")
        if not isinstance(raw, dict) or not raw:
            raise ResponseValidationError("the resolved spec lists no components")
        components = _COMPONENTS[settings] = [str(c) for c in raw]

    rewards: list[float] = [0.0] * n
    scores: list[float] = [0.0] * n
    logs: list[dict[str, float]] = [{}] * n
    for (preset, toolset, eos), members in groups.items():
        params: dict[str, Any] = {
            "preset": preset if preset is not None else env_preset,
            "spec": None if preset is not None else spec,
            "toolset": toolset if toolset is not None else settings.toolset,
        }
        if eos:
            params["eos_tokens"] = list(eos)
        response = backend.score([item for _, item in members], **params)
        if len(response.results) != len(members):
            raise ResponseValidationError(f"sent {len(members)} items, got {len(response.results)} results")
        reward_range = _reward_range(settings, backend, params["preset"])
        for (index, _), result in zip(members, response.results, strict=True):
            if result.error is not None or result.reward is None:
                error = result.error or ErrorInfo(type="no_reward", message="no reward and no error")
                where = _where(index, labels[index] if labels else None)
                if settings.on_error is None or result.error is None:
                    logger.error("OpenRLHF reward: %s could not be scored: %s", where, error.message)
                    raise RowScoringError(index, error, where)
                logger.warning("%s could not be scored (%s); giving it %s", where, error.message, settings.on_error)
                rewards[index] = settings.on_error
                scores[index] = unit_score(settings.on_error, reward_range)
                logs[index] = extra_log_values(None, components)
                continue
            rewards[index] = float(result.reward)
            scores[index] = unit_score(rewards[index], reward_range)
            logs[index] = extra_log_values(result, components)
    keys = list(logs[0]) if logs else list(extra_log_values(None, components))
    extra = {key: [entry[key] for entry in logs] for key in keys}
    return _as_output(rewards, scores, extra)


def _finished(settings: EnvSettings) -> bool | None:
    return True if settings.finished == "assume" else None


def _as_output(rewards: list[float], scores: list[float], extra: dict[str, list[float]]) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"rewards": rewards, "scores": scores, "extra_logs": extra}
    return {
        "rewards": torch.tensor(rewards, dtype=torch.float32),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "extra_logs": {name: torch.tensor(values, dtype=torch.float32) for name, values in extra.items()},
    }
