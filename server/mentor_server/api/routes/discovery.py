"""Discovery: the presets and toolsets this service knows, and spec validation.

`GET /v1/presets[/{name}]` lists the reward presets with their formula, reward range, spec and
hash; `GET /v1/toolsets[/{name}]` lists the toolsets with their OpenAI-format schemas and which
tools can be executed; `POST /v1/specs/validate` returns the normalised spec and its hash, or a
400 whose `param` names the offending field. An unknown name in the path is a 404.
"""

from __future__ import annotations

from fastapi import APIRouter

from mentor_client.protocol import (
    API_PREFIX,
    PresetInfo,
    PresetList,
    ToolsetInfo,
    ToolsetList,
    ValidateSpecRequest,
    ValidateSpecResponse,
)

from ...scoring import PresetDescription, ScoringConfigError, get_preset, list_presets
from ...toolsets import Toolset, get_toolset, list_toolsets
from ..errors import ERROR_RESPONSES, ApiError, JSONErrorRoute
from ..guards import check_depth
from ..state import SettingsDep, StateDep

router = APIRouter(prefix=API_PREFIX, tags=["discovery"], route_class=JSONErrorRoute, responses=ERROR_RESPONSES)


def _preset_info(preset: PresetDescription) -> PresetInfo:
    return PresetInfo(
        name=preset.name,
        description=preset.description,
        formula=preset.formula,
        reward_range=preset.reward_range,
        spec=preset.spec.to_dict(),
        spec_hash=preset.spec.hash,
    )


def _toolset_info(toolset: Toolset) -> ToolsetInfo:
    return ToolsetInfo(
        name=toolset.name,
        description=toolset.description,
        tools=toolset.schemas(),
        executable=[name for name, tool in toolset.tools.items() if tool.executable],
    )


@router.get("/presets", response_model=PresetList, summary="List reward presets")
async def presets() -> PresetList:
    return PresetList(presets=[_preset_info(p) for p in list_presets()])


@router.get("/presets/{name}", response_model=PresetInfo, summary="Describe one reward preset")
async def preset(name: str) -> PresetInfo:
    try:
        spec = get_preset(name)
    except ScoringConfigError as exc:
        raise ApiError(404, str(exc), param="name") from exc
    return _preset_info(PresetDescription(name, spec.description, spec.formula(), spec.reward_range, spec))


@router.get("/toolsets", response_model=ToolsetList, summary="List toolsets")
async def toolsets() -> ToolsetList:
    return ToolsetList(toolsets=[_toolset_info(t) for t in list_toolsets()])


@router.get("/toolsets/{name}", response_model=ToolsetInfo, summary="Describe one toolset")
async def toolset(name: str) -> ToolsetInfo:
    try:
        found = get_toolset(name)
    except ScoringConfigError as exc:
        raise ApiError(404, str(exc), param="name") from exc
    return _toolset_info(found)


@router.post("/specs/validate", response_model=ValidateSpecResponse, summary="Validate a reward spec")
async def validate_spec(request: ValidateSpecRequest, state: StateDep, settings: SettingsDep) -> ValidateSpecResponse:
    """The same validation `/v1/score` runs (every component's options included)."""
    for name in ("spec", "overrides"):
        value = getattr(request, name)
        if value is not None:
            check_depth(value, settings.max_json_depth, name)
    config = await state.resolve_config(preset=request.preset, spec=request.spec, overrides=request.overrides)
    spec = config.spec
    return ValidateSpecResponse(spec=spec.to_dict(), spec_hash=config.engine.spec.hash, reward_range=spec.reward_range)
