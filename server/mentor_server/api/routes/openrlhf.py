"""POST /v1/openrlhf: OpenRLHF's remote reward protocol, so `--reward.remote_url` works unchanged.

OpenRLHF posts `{"query": [str], "prompts": [str], "labels": [label]}` and reads
`{"rewards": [float], "scores": [float], "extra_logs": {name: [float]}}`.

- The completion scored is `query[i]` minus its prompt: OpenRLHF decodes prompt + response
  together, so when `query[i]` starts with `prompts[i]` that prefix is removed (otherwise, e.g.
  when the two decode differently, the whole query is scored, as the paper's authors did).
  Removing it matters: a system prompt that shows example `<tool_call>`s would otherwise be
  read as the student's calls.
- `labels[i]` carries the reference (OpenRLHF's `--label_key` column). Either a plain string,
  the ground-truth answer; or an object, or a string holding a JSON object:

      {"ground_truth": "42" | ["42", "42.0"],
       "teacher_tools": ["multiply", "add"]        # names only, as in the paper, or
       "reference": {"calls": [...], "answer": ...}, # a full trace
       "preset": "mentor-f1",                       # optional, per sample
       "toolset": "calculator",                     # optional
       "finished": true}                            # optional

- The preset defaults to the `preset` query parameter, else the service's `openrlhf_preset`
  (`mentor`): `--reward.remote_url "http://host:8000/v1/openrlhf?preset=mentor-f1&run_id=exp1"`.
  `run_id` and `step` query parameters label the score record.
- A malformed label is a 422 naming it (`labels.3.teacher_tools`): OpenRLHF retries, then stops
  loudly, instead of training on a made-up number.
- An item that cannot be scored (e.g. it overran its time limit) gets the spec's lowest
  possible reward and `extra_logs["item_error"] = 1` for it, since this protocol has no way to
  say "no reward". `extra_logs` holds every component (not-applicable logged as 0.0: they are
  logs, never rewards) and `item_error`, with the same keys for every sample.
- OpenRLHF's client sends no Authorization header: run this endpoint on a service without
  API keys, bound to a private address, or use `mentor_client`'s OpenRLHF `reward_func` file,
  which authenticates.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, ValidationError

from mentor_client.protocol import API_PREFIX, OpenRLHFRequest, OpenRLHFResponse

from ...scoring import ScoringConfigError, item_from_dict
from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute, loc_to_param
from ..guards import check_depth
from ..state import ResolvedConfig, SettingsDep, StateDep

router = APIRouter(prefix=API_PREFIX, tags=["trainers"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)


class _Label(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ground_truth: str | list[str] | None = None
    teacher_tools: list[str] | None = None
    reference: dict[str, Any] | None = None
    preset: str | None = None
    toolset: str | None = None
    finished: bool | None = None


def _label(value: Any, index: int) -> _Label:
    param = f"labels.{index}"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                return _Label(ground_truth=value)  # e.g. a set answer "{1, 2}": it is the ground truth
        else:
            return _Label(ground_truth=value)
    if isinstance(value, bool) or value is None:
        raise ApiError(422, f"{param}: expected the ground truth or an object with it", param=param)
    if isinstance(value, (int, float)):
        return _Label(ground_truth=str(value))
    if isinstance(value, list):
        value = {"ground_truth": value}
    try:
        return _Label.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = loc_to_param([param, *first["loc"]])
        raise ApiError(422, f"{where}: {first['msg']}", param=where) from exc


def _completion(query: str, prompt: str) -> str:
    return query[len(prompt) :] if prompt and query.startswith(prompt) else query


@router.post("/openrlhf", response_model=OpenRLHFResponse, summary="OpenRLHF remote reward")
async def openrlhf(
    request: OpenRLHFRequest,
    state: StateDep,
    settings: SettingsDep,
    preset: Annotated[str | None, Query(description="reward preset (labels may override it)")] = None,
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
    check_depth(request.labels, settings.max_json_depth, "labels")

    groups: dict[tuple[str, str | None], list[int]] = {}
    items: list[dict[str, Any]] = []
    for i, (query, prompt, raw) in enumerate(zip(request.query, request.prompts, request.labels, strict=True)):
        label = _label(raw, i)
        item: dict[str, Any] = {"completion": _completion(query, prompt), "ground_truth": label.ground_truth}
        if label.reference is not None:
            item["reference"] = label.reference
        elif label.teacher_tools is not None:
            item["teacher_tools"] = label.teacher_tools
        if label.finished is not None:
            item["finished"] = label.finished
        try:
            item_from_dict(item)
        except ScoringConfigError as exc:
            param = f"labels.{i}.{exc.param}" if exc.param else f"labels.{i}"
            raise ApiError(422, str(exc), param=param) from exc
        items.append(item)
        groups.setdefault((label.preset or preset or settings.openrlhf_preset, label.toolset), []).append(i)

    if not groups:  # an empty request still validates its reward choice
        state.resolve_config(
            preset=preset or settings.openrlhf_preset,
            spec=None,
            overrides=None,
            toolset=None,
            tools=None,
            parser="auto",
        )
    configs: dict[tuple[str, str | None], ResolvedConfig] = {}
    for key in groups:
        configs[key] = state.resolve_config(
            preset=key[0], spec=None, overrides=None, toolset=key[1], tools=None, parser="auto"
        )

    async def run(key: tuple[str, str | None]) -> list[dict[str, Any]]:
        results, _stats = await state.score_items(
            configs[key], [items[i] for i in groups[key]], run_id=run_id, step=step
        )
        return results

    outcomes = await asyncio.gather(*(run(key) for key in groups))
    rewards: list[float] = [0.0] * n
    per_item: list[dict[str, Any]] = [{}] * n
    component_names: list[str] = []
    for key, results in zip(groups, outcomes, strict=True):
        floor = configs[key].spec.reward_range[0]
        for name in configs[key].spec.components:
            if name not in component_names:
                component_names.append(name)
        for i, result in zip(groups[key], results, strict=True):
            rewards[i] = floor if result["reward"] is None else float(result["reward"])
            per_item[i] = result
    extra_logs: dict[str, list[float]] = {
        name: [float(r["components"].get(name) or 0.0) for r in per_item] for name in component_names
    }
    extra_logs["item_error"] = [0.0 if r["error"] is None else 1.0 for r in per_item]
    return OpenRLHFResponse(rewards=rewards, scores=list(rewards), extra_logs=extra_logs)
