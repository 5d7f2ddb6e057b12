"""POST /v1/tools/execute: run one registered deterministic tool for a rollout loop.

Only tools registered in the service's toolsets with an implementation can run; the request
names the tool and passes JSON arguments, which are validated against the tool's schema
before the operator-installed function runs in a scoring process, under a time limit.
Nothing in the request is ever evaluated as code.

The event loop only does what costs the same for any request: the body is at most
`max_tool_request_bytes` (refused by the size guard before it is parsed), the tool is looked
up by name, and everything that grows with the arguments (schema validation included, which
for a long array can take seconds) runs in the worker, under the job's hard deadline: a tool
that overruns, even one stuck in C code, has its process killed. A lone surrogate in an
argument key or a tool name comes back as U+FFFD in the answer, never as a 500.

What a *model* got wrong is an answer, not an HTTP error, because a rollout loop shows it to
the model: an unknown tool name, arguments that break the schema, a tool that raised or
overran give 200 with `ok: false`, `error.type` (`unknown_tool`, `invalid_arguments`,
`tool_error`, `timeout`) and `content` (the text to show the model). What the *caller* got
wrong is an HTTP error: an unknown toolset is a 400 (`param: toolset`), a tool with no
implementation is a 400 (`not_executable`, `param: name`).
"""

from __future__ import annotations

import json

from fastapi import APIRouter

from mentor_client.protocol import API_PREFIX, ErrorInfo, ExecuteToolRequest, ExecuteToolResponse

from ...toolsets import get_toolset
from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute, SafeJSONResponse
from ..guards import check_depth
from ..pool import WorkerCrashed
from ..state import SettingsDep, StateDep

router = APIRouter(prefix=API_PREFIX, tags=["tools"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)


def _failure(kind: str, message: str) -> ExecuteToolResponse:
    return ExecuteToolResponse(
        ok=False,
        result=None,
        content=json.dumps({"error": message}),
        error=ErrorInfo(type=kind, message=message),
    )


@router.post(
    "/tools/execute",
    response_model=ExecuteToolResponse,
    response_class=SafeJSONResponse,
    summary="Execute a registered tool",
)
async def execute_tool(request: ExecuteToolRequest, state: StateDep, settings: SettingsDep) -> ExecuteToolResponse:
    check_depth(request.arguments, settings.max_json_depth, "arguments")
    toolset = get_toolset(request.toolset)  # unknown -> ScoringConfigError -> 400 naming `toolset`
    tool = toolset.tools.get(request.name)
    if tool is None:
        return _failure("unknown_tool", f"no tool named {request.name!r} in toolset {toolset.name!r}")
    if not tool.executable:
        raise ApiError(
            400,
            f"tool {request.name!r} has no implementation on this service",
            type="not_executable",
            param="name",
        )
    job = {
        "toolset": toolset.name,
        "name": request.name,
        "arguments": request.arguments,
        "timeout_s": settings.tool_timeout_s,
    }
    try:
        result = await state.require_pool().execute_tool(job, settings.tool_timeout_s)
    except WorkerCrashed:
        return _failure("tool_error", "the process running the tool died")
    if result is None:
        return _failure("timeout", f"the tool did not finish within {settings.tool_timeout_s:g} s")
    return ExecuteToolResponse.model_validate(result)
