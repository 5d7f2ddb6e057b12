"""POST /v1/score: score a batch of rollouts under one reward spec.

The reward is a preset name or an inline spec (plus overrides); the tools are a registered
toolset or inline schemas. The batch is validated here (limits, nesting, the reward choice:
a 400 naming the field before any work starts), scored in the process pool, and answered with
one result per item in order, the spec hash and the batch aggregates. An item that cannot be
scored (a bad reference, a timeout) carries its own `error` and never fails its neighbours.

An empty `items` list is valid: the answer is 200 with no results and `n_items: 0` (a trainer
rank can legitimately have nothing to score), after the reward choice has been validated.
Unknown request fields are ignored (the wire protocol's forward-compatibility rule).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import TypeAdapter

from mentor_client.protocol import API_PREFIX, ScoreItem, ScoreRequest, ScoreResponse

from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute
from ..guards import check_depth
from ..state import SettingsDep, StateDep, public_result

router = APIRouter(prefix=API_PREFIX, tags=["scoring"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)

_ITEMS = TypeAdapter(list[ScoreItem])


def check_request_shape(request: ScoreRequest, max_items: int, max_depth: int) -> list[dict[str, Any]]:
    """Enforce the item limit and nesting bound; return the items as plain dicts for the workers."""
    if len(request.items) > max_items:
        raise ApiError(
            413,
            f"the batch has {len(request.items)} items; the limit is {max_items} per request "
            "(split it, as the client does)",
            type="too_many_items",
            param="items",
        )
    if request.step is not None and not -(2**63) <= request.step < 2**63:
        # The record stores steps as 64-bit integers.
        raise ApiError(422, "step: must fit in a signed 64-bit integer", type="validation_error", param="step")
    for name in ("spec", "overrides", "tools"):
        value = getattr(request, name)
        if value is not None:
            check_depth(value, max_depth, name)
    items: list[dict[str, Any]] = _ITEMS.dump_python(request.items, exclude_none=True)
    for index, item in enumerate(items):
        # Only these two can nest: the other fields are strings or lists of strings by schema.
        reference = item.get("reference")
        if reference is not None:
            check_depth(reference, max_depth - 1, f"items.{index}")
        completion = item["completion"]
        if not isinstance(completion, str):
            check_depth(completion, max_depth - 1, f"items.{index}")
    return items


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score a batch of rollouts",
    description=__doc__,
)
async def score(request: ScoreRequest, state: StateDep, settings: SettingsDep) -> dict[str, Any]:
    items = check_request_shape(request, settings.max_items, settings.max_json_depth)
    config = state.resolve_config(
        preset=request.preset,
        spec=request.spec,
        overrides=request.overrides,
        toolset=request.toolset,
        tools=request.tools,
        parser=request.parser,
    )
    results, stats = await state.score_items(config, items, run_id=request.run_id, step=request.step)
    return {
        "results": [public_result(r) for r in results],
        "spec_hash": config.spec.hash,
        "preset": config.preset,
        "stats": stats,
    }
