"""POST /v1/score: score a batch of rollouts under one reward spec.

The reward is a preset name or an inline spec (plus overrides); the tools are a registered
toolset or inline schemas. The batch is validated here (limits, nesting, the reward choice:
a 400 naming the field before any work starts), scored in the process pool, and answered with
one result per item in order, the spec hash and the batch aggregates. An item that cannot be
scored (a bad reference, a timeout) carries its own `error` and never fails its neighbours.

An empty `items` list is valid: the answer is 200 with no results and `n_items: 0` (a trainer
rank can legitimately have nothing to score), after the reward choice has been validated.
The request envelope is strict: an unknown field is a 400 naming it, and so is a request that
names neither `preset` nor `spec`. Items are read one by one in the workers: a malformed item
(a number as `completion`, a misspelt field) is that item's `error`, named `items[i]` by its
index in this request, and never fails the batch.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic_core import to_json

from mentor_client.protocol import API_PREFIX, ScoreRequest, ScoreResponse

from ...scoring import ItemError, ItemScore
from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute
from ..guards import check_depth, check_item_completion, check_run_id, check_schemas, within_depth
from ..settings import ServiceSettings
from ..state import SettingsDep, StateDep

router = APIRouter(prefix=API_PREFIX, tags=["scoring"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)


def check_request_shape(request: ScoreRequest, settings: ServiceSettings) -> dict[int, ItemScore]:
    """The cheap bounds, checked before any item is read: the item count, the inline schemas'
    sizes, `run_id`, `step` and nesting are the request's (a 413/422 naming the field); a
    completion over its size limits is that item's own error (returned by index), so one
    oversized rollout does not fail its batch."""
    if len(request.items) > settings.max_items:
        raise ApiError(
            413,
            f"the batch has {len(request.items)} items; the limit is {settings.max_items} per request "
            "(split it, as the client does)",
            type="too_many_items",
            param="items",
        )
    check_schemas(request.tools, request.spec, request.overrides, settings)
    check_run_id(request.run_id, settings.max_run_id_chars)
    if request.step is not None and not -(2**63) <= request.step < 2**63:
        # The record stores steps as 64-bit integers.
        raise ApiError(422, "step: must fit in a signed 64-bit integer", type="validation_error", param="step")
    for name in ("spec", "overrides", "tools"):
        value = getattr(request, name)
        if value is not None:
            check_depth(value, settings.max_json_depth, name)
    refused: dict[int, ItemScore] = {}
    # The common case in one pass: no item nests too deep (then only completions need a look),
    # and a text completion within its character limit has nothing else to check. Otherwise
    # each item is checked in full, in order, so the first culprit is the one named.
    depth_ok = within_depth([i for i in request.items if isinstance(i, dict)], settings.max_json_depth - 1)
    max_chars = settings.max_completion_chars
    for index, item in enumerate(request.items):
        if not isinstance(item, dict):
            continue
        completion = item.get("completion")
        if depth_ok and type(completion) is str and len(completion) <= max_chars:
            continue
        try:
            check_item_completion(completion, f"items[{index}].completion", settings)
            if not depth_ok:
                check_depth(item, settings.max_json_depth - 1, f"items[{index}]")
        except ApiError as exc:
            if exc.type == "too_deep":
                raise
            refused[index] = ItemScore(None, {}, exc.message, ItemError(exc.type, exc.message, exc.param))
    return refused


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score a batch of rollouts",
    description=__doc__,
)
async def score(request: ScoreRequest, state: StateDep, settings: SettingsDep) -> Any:
    refused = check_request_shape(request, settings)
    config = await state.resolve_config(
        preset=request.preset,
        spec=request.spec,
        overrides=request.overrides,
        toolset=request.toolset,
        tools=request.tools,
        parser=request.parser,
        eos_tokens=request.eos_tokens,
    )
    rows, stats = await state.score_rows(
        config, request.items, run_id=request.run_id, step=request.step, refused=refused, reasons=request.reasons
    )
    answer = {"results": rows, "spec_hash": config.engine.spec.hash, "preset": config.preset, "stats": stats}
    # Written once, from plain dicts in `ScoreResponse`'s field order, by pydantic's own JSON
    # writer (the bytes its models would write; no model per item). `reasons: false` only
    # thins the answer: the rows were built without reasons, or with them for the record
    # (which keeps every reason) and they are left out here; an item's error message travels
    # in its `error`.
    exclude = _NO_REASONS if not request.reasons and rows and "reason" in rows[0] else None
    return Response(to_json(answer, exclude=exclude), media_type="application/json")


_NO_REASONS: Any = {"results": {"__all__": {"reason"}}}
