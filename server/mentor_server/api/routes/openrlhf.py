"""POST /v1/openrlhf: OpenRLHF's remote reward protocol, so `--reward.remote_url` works unchanged.

OpenRLHF posts `{"query": [str], "prompts": [str], "labels": [label]}` and reads
`{"rewards": [float], "scores": [float], "extra_logs": {name: [float]}}`.

- The completion scored is `query[i]` minus its prompt: OpenRLHF decodes prompt + response
  together, so when `query[i]` starts with `prompts[i]` that prefix is removed (otherwise, e.g.
  when the two decode differently, the whole query is scored, as the paper's authors did).
  Removing it matters: a system prompt that shows example `<tool_call>`s would otherwise be
  read as the student's calls.
- `labels[i]` carries the reference (OpenRLHF's `--label_key` column), read by the same code
  as the client's OpenRLHF `reward_func` file (`mentor_client.adapters._common.label_fields`),
  so the two routes read a label identically. Either a plain string, the ground-truth answer;
  or an object, or a string holding a JSON object:

      {"ground_truth": "42" | ["42", "42.0"],
       "teacher_tools": ["multiply", "add"]        # names only, as in the paper, or
       "reference": {"calls": [...], "answer": ...}, # a full trace
       "preset": "mentor-f1",                       # optional, per sample
       "toolset": "calculator",                     # optional
       "finished": true,                            # optional
       "eos_tokens": ["<|eot_id|>"]}                # optional: the policy's end token(s)

- The preset defaults to the `preset` query parameter, else the service's `openrlhf_preset`
  (`mentor`): `--reward.remote_url "http://host:8000/v1/openrlhf?preset=mentor-f1&run_id=exp1"`.
  `run_id` and `step` query parameters label the score record.
- The query is decoded *with* special tokens, so the policy's EOS is in the text: a label's
  `eos_tokens`, else the `eos_tokens` query parameter, else the common chat templates' end
  tokens decide whether it finished (any model, not only ChatML).
- A malformed label is a 422 naming it (`labels[3].teacher_tools`), logged at WARNING with its
  index and reason and counted in `/metrics` (`mentor_item_errors_total{type="invalid_label"}`):
  OpenRLHF itself retries and then logs only "Unprocessable Entity".
- An item that cannot be scored (e.g. it overran its time limit) gets the spec's lowest
  possible reward and `extra_logs["item_error"] = 1` for it, since this protocol has no way to
  say "no reward" (and the error is logged at WARNING).
- `scores` (OpenRLHF's dynamic-filtering value, read in [0, 1]) is the reward rescaled by the
  spec's reward range; `rewards` is the reward itself.
- `extra_logs` has the same keys for every sample (the default preset's components, whatever a
  label's own preset), so OpenRLHF's `.mean()` over a step is right: for each component `c`,
  `c` is its score where it applies and 0 where it does not, and `c/applicable` is 1 or 0; the
  component's true mean is `mean(c) / mean(c/applicable)`.
- OpenRLHF's client sends no Authorization header: run this endpoint on a service without
  API keys, bound to a private address, or use `mentor_client`'s OpenRLHF `reward_func` file,
  which authenticates.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query

from mentor_client.adapters._common import label_fields
from mentor_client.protocol import API_PREFIX, ItemResult, OpenRLHFRequest, OpenRLHFResponse

from ...scoring import ItemError, ItemScore, ScoringConfigError, item_from_dict
from ...scoring.engine import check_eos_tokens
from ...scoring.types import join_path
from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute
from ..guards import check_depth, check_item_completion, check_run_id
from ..state import ResolvedConfig, SettingsDep, StateDep

log = logging.getLogger("mentor_server.api.openrlhf")

router = APIRouter(prefix=API_PREFIX, tags=["trainers"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)

_Group = tuple[str, str | None, tuple[str, ...] | None]


def _completion(query: str, prompt: str) -> str:
    return query[len(prompt) :] if prompt and query.startswith(prompt) else query


@router.post("/openrlhf", response_model=OpenRLHFResponse, summary="OpenRLHF remote reward")
async def openrlhf(
    request: OpenRLHFRequest,
    state: StateDep,
    settings: SettingsDep,
    preset: Annotated[str | None, Query(description="reward preset (labels may override it)")] = None,
    eos_tokens: Annotated[
        str | None,
        Query(description="the policy's end-of-sequence token(s), comma-separated (labels may override them)"),
    ] = None,
    run_id: Annotated[str | None, Query(description="run id for the score record")] = None,
    step: Annotated[int | None, Query(description="step for the score record")] = None,
) -> OpenRLHFResponse:
    n = len(request.query)
    if n > settings.max_items:
        raise ApiError(
            413,
            f"{n} queries; the limit is {settings.max_items} per request",
            type="too_many_items",
            param="query",
        )
    for name, values in (("prompts", request.prompts), ("labels", request.labels)):
        if len(values) != n:
            raise ApiError(422, f"'{name}' has {len(values)} entries for {n} queries", param=name)
    check_run_id(run_id, settings.max_run_id_chars)
    try:
        default_eos = check_eos_tokens(eos_tokens.split(",") if eos_tokens is not None else None)
    except ScoringConfigError as exc:
        raise ApiError(422, str(exc), param=exc.param) from exc

    groups: dict[_Group, list[int]] = {}
    items: list[dict[str, Any]] = []
    refused: dict[int, ItemScore] = {}
    for i, (query, prompt, raw) in enumerate(zip(request.query, request.prompts, request.labels, strict=True)):
        where = f"labels[{i}]"
        try:
            if raw is None:
                raise ValueError(f"{where}: a label is required (the ground truth, or an object with it)")
            # Labels sent as JSON text are parsed here: the nesting limit applies to what they hold.
            fields = label_fields(raw, where)
            for name in ("reference", "teacher_tools", "ground_truth"):
                if fields.get(name) is not None:
                    check_depth(fields[name], settings.max_json_depth - 2, f"{where}.{name}")
            item: dict[str, Any] = {"completion": _completion(query, prompt)}
            for name in ("ground_truth", "reference", "teacher_tools", "finished"):
                if fields.get(name) is not None:
                    item[name] = fields[name]
            item_from_dict(item)
            label_eos = check_eos_tokens(fields.get("eos_tokens"), f"{where}.eos_tokens")
        except ApiError as exc:
            _reject(state, i, exc.message)
            raise
        except ScoringConfigError as exc:
            param = join_path(where, exc.param)
            _reject(state, i, f"{param}: {exc}")
            raise ApiError(422, f"{param}: {exc}", param=param) from exc
        except (ValueError, TypeError, RecursionError) as exc:
            message = str(exc) or f"{where}: unreadable label"
            _reject(state, i, message)
            # The label reader's messages start with the field they are about.
            named = message.split(":", 1)[0]
            raise ApiError(422, message, param=named if named.startswith(where) else where) from exc
        try:
            check_item_completion(item["completion"], f"query[{i}]", settings)
        except ApiError as exc:  # scored as this sample's error (the floor, flagged), not the request's
            refused[i] = ItemScore(None, {}, exc.message, ItemError(exc.type, exc.message, exc.param))
        items.append(item)
        group = (
            fields.get("preset") or preset or settings.openrlhf_preset,
            fields.get("toolset"),
            label_eos or default_eos,
        )
        groups.setdefault(group, []).append(i)

    # The default reward is validated even for an empty request, and its components are the
    # `extra_logs` keys of every sample (OpenRLHF stacks them across samples and requests).
    default = await state.resolve_config(preset=preset or settings.openrlhf_preset, spec=None)
    component_names = list(default.spec.components)
    configs: dict[_Group, ResolvedConfig] = {}
    for key in groups:
        configs[key] = await state.resolve_config(preset=key[0], spec=None, toolset=key[1], eos_tokens=key[2])

    async def run(key: _Group) -> list[ItemResult]:
        members = groups[key]
        own_refusals = {j: refused[i] for j, i in enumerate(members) if i in refused}
        results, _stats = await state.score_items(
            configs[key], [items[i] for i in members], run_id=run_id, step=step, refused=own_refusals
        )
        return results

    outcomes = await asyncio.gather(*(run(key) for key in groups))
    rewards: list[float] = [0.0] * n
    scores: list[float] = [0.0] * n
    per_item: list[ItemResult | None] = [None] * n
    for key, results in zip(groups, outcomes, strict=True):
        low, high = configs[key].spec.reward_range
        for i, result in zip(groups[key], results, strict=True):
            if result.reward is None:
                # This protocol cannot say "no reward": the spec's floor, flagged in extra_logs.
                reward = low
                log.warning(
                    "openrlhf sample %d not scored (%s): given the floor reward %g",
                    i,
                    result.error.message if result.error else "no reward",
                    low,
                )
            else:
                reward = float(result.reward)
            rewards[i] = reward
            scores[i] = min(1.0, max(0.0, (reward - low) / (high - low))) if high > low else 0.0
            per_item[i] = result
    extra_logs: dict[str, list[float]] = {}
    for name in component_names:
        values = [None if r is None else r.components.get(name) for r in per_item]
        extra_logs[name] = [0.0 if v is None else float(v) for v in values]
        extra_logs[f"{name}/applicable"] = [0.0 if v is None else 1.0 for v in values]
    extra_logs["item_error"] = [0.0 if r is not None and r.error is None else 1.0 for r in per_item]
    return OpenRLHFResponse(rewards=rewards, scores=scores, extra_logs=extra_logs)


def _reject(state: Any, index: int, reason: str) -> None:
    # OpenRLHF swallows the 422 (it logs only "Unprocessable Entity"): say which label, here.
    log.warning("openrlhf label %d rejected: %s", index, reason)
    state.metrics.item_errors.labels("invalid_label").inc()
