"""Built-in reward presets: the MENTOR paper's five reward functions, and ours beyond them.

The paper's presets (`sparse`, `mentor`, `mentor-partial`, `mentor-f1`, `mentor-no-tool-match`)
reproduce the authors' released reward code exactly (tests/server/scoring/test_parity.py runs
their 150 scored cases). Their shared steps: EOS gate → 0.0; no `\\boxed{}` answer → 0.1; then
C (correct), S (set of registry tools the student called), T (teacher's tool set), H (no
hallucinated tool name).

Preset names and component names are public API (metric names in users' logs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spec import RewardSpec, merge_overrides
from .types import ScoringConfigError

_PAPER_GATES = [{"when": "not_finished", "reward": 0.0}, {"when": "no_answer", "reward": 0.1}]
_PAPER_TOOL_GATES = [*_PAPER_GATES, {"when": "no_teacher_tools", "reward": 0.1}]
# The authors count only registry names as used tools; hallucinated names go to H instead.
_PAPER_NAMES = {"count_invalid": False}


def _paper_tool_match(mode: str, *, with_hallucination_term: bool) -> dict[str, Any]:
    """The three teacher-matching presets of the paper differ only in the match mode and H."""
    components: dict[str, Any] = {
        "outcome": {"weight": 0.7},
        "tool_names": {"weight": 0.3, "wrong_answer_scale": 0.2, "options": {"mode": mode, **_PAPER_NAMES}},
    }
    if with_hallucination_term:
        components["no_hallucination"] = {"weight": 0.1}
    return {"toolset": "calculator", "gates": _PAPER_TOOL_GATES, "components": components}


@dataclass(frozen=True, slots=True)
class PresetDescription:
    name: str
    description: str
    formula: str
    reward_range: tuple[float, float]
    spec: RewardSpec


_BUILTIN: dict[str, tuple[str, dict[str, Any]]] = {
    "sparse": (
        "Outcome only (the paper's sparse-reward RL baseline): 1.0 if correct, else 0.1.",
        {
            "toolset": "calculator",
            "gates": _PAPER_GATES,
            "bias": 0.1,
            "components": {"outcome": {"weight": 0.9}},
        },
    ),
    "mentor": (
        "MENTOR: 0.7·C + 0.3·[S non-empty and S == T] + 0.1·H; the tool-match term ×0.2 when wrong.",
        _paper_tool_match("exact_set", with_hallucination_term=True),
    ),
    "mentor-partial": (
        "MENTOR with partial tool credit: 0.7·C + 0.3·[S ∩ T non-empty]; ×0.2 when wrong; no H term.",
        _paper_tool_match("any_overlap", with_hallucination_term=False),
    ),
    "mentor-f1": (
        "MENTOR with tool-name F1: 0.7·C + 0.3·F1(S, T) + 0.1·H; the F1 term ×0.2 when wrong.",
        _paper_tool_match("f1", with_hallucination_term=True),
    ),
    "mentor-no-tool-match": (
        "MENTOR ablation without teacher matching: 0.7·C + 0.1·H.",
        {
            "toolset": "calculator",
            "gates": _PAPER_GATES,
            "components": {"outcome": {"weight": 0.7}, "no_hallucination": {"weight": 0.1}},
        },
    ),
    "strict": (
        "Strict trajectory matching (the paper's rigid baseline): 0.7·C + 0.3·[same calls, same order, "
        "same arguments as the teacher] + 0.1·H; the match term ×0.2 when wrong. With a names-only "
        "reference the name sequence must match exactly.",
        {
            "toolset": "calculator",
            "gates": _PAPER_TOOL_GATES,
            "components": {
                "outcome": {"weight": 0.7},
                "strict_sequence": {"weight": 0.3, "wrong_answer_scale": 0.2},
                "no_hallucination": {"weight": 0.1},
            },
        },
    ),
    "flexible": (
        "Flexible teacher guidance: 0.5·outcome + 0.15·tool-name F1 + 0.15·optimally paired arguments "
        "+ 0.1·result equivalence + 0.1·no hallucination; the three teacher-matching terms ×0.3 when the "
        "answer is wrong; not-applicable terms (e.g. arguments for a names-only reference) have their "
        "weight redistributed. Schema validity and efficiency are logged only.",
        {
            "toolset": "calculator",
            "gates": [{"when": "not_finished", "reward": 0.0}],
            "none_policy": "renormalize",
            "components": {
                "outcome": {"weight": 0.5},
                "tool_names": {"weight": 0.15, "wrong_answer_scale": 0.3, "options": {"mode": "f1"}},
                "arguments": {"weight": 0.15, "wrong_answer_scale": 0.3},
                "tool_results": {"weight": 0.1, "wrong_answer_scale": 0.3},
                "no_hallucination": {"weight": 0.1},
                "schema_valid": {"weight": 0.0},
                "efficiency": {"weight": 0.0},
                "format": {"weight": 0.0},
            },
        },
    ),
    "toolrl": (
        "ToolRL (Qian et al. 2025) for comparison runs: format ∈ {0,1} + correctness ∈ [-3, 3] "
        "(greedy pairing, Jaccard of names and keys, plain == on values); range [-3, 4]. "
        "Expressed as -3 + 1·format + 6·(correctness+3)/6.",
        {
            "gates": [],
            "bias": -3.0,
            "components": {
                "format": {"weight": 1.0, "options": {"mode": "all"}},
                "toolrl_correctness": {"weight": 6.0},
                "outcome": {"weight": 0.0},
            },
        },
    ),
}

BUILTIN_PRESETS: tuple[str, ...] = tuple(_BUILTIN)
"""The presets every install has (`register_preset` and service config files add others)."""

_EXTRA: dict[str, tuple[str, dict[str, Any]]] = {}


def _build(name: str, description: str, data: dict[str, Any]) -> RewardSpec:
    return RewardSpec.from_dict({**data, "name": name, "description": description})


_CACHE: dict[str, RewardSpec] = {}


def preset_names() -> list[str]:
    return [*_BUILTIN, *_EXTRA]


def get_preset(name: str) -> RewardSpec:
    """The spec of a named preset; unknown names raise ScoringConfigError(param="preset")."""
    cached = _CACHE.get(name)
    if cached is not None:
        return cached
    entry = _BUILTIN.get(name) or _EXTRA.get(name)
    if entry is None:
        known = ", ".join(preset_names())
        raise ScoringConfigError(f"unknown preset {name!r}; known presets: {known}", param="preset")
    spec = _build(name, entry[0], entry[1])
    _CACHE[name] = spec
    return spec


def register_preset(name: str, spec: dict[str, Any], description: str = "", *, replace: bool = False) -> RewardSpec:
    """Add a named preset (from a service config file, say). Built-in names cannot be replaced."""
    if name in _BUILTIN:
        raise ScoringConfigError(f"preset {name!r} is built in and cannot be replaced", param="preset")
    if name in _EXTRA and not replace:
        raise ScoringConfigError(f"preset {name!r} is already registered", param="preset")
    built = _build(
        name,
        description or spec.get("description", ""),
        {k: v for k, v in spec.items() if k not in ("name", "description")},
    )
    _EXTRA[name] = (built.description, built.to_dict())
    _CACHE.pop(name, None)
    return built


def list_presets() -> list[PresetDescription]:
    out = []
    for name in preset_names():
        spec = get_preset(name)
        out.append(PresetDescription(name, spec.description, spec.formula(), spec.reward_range, spec))
    return out


def resolve_spec(
    preset: str | None = None,
    spec: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> RewardSpec:
    """The spec a request asks for: a preset or an inline spec (exactly one), plus overrides.

    There is no default reward: a request that names neither is a mistake (a misspelt field
    must not quietly become some preset), so it is an error naming `preset`.
    """
    if preset is not None and spec is not None:
        raise ScoringConfigError("give either 'preset' or 'spec', not both", param="spec")
    if preset is None and spec is None:
        raise ScoringConfigError(
            "name the reward: 'preset' (see GET /v1/presets or `mentor-reward presets`) or an inline 'spec'",
            param="preset",
        )
    if spec is not None:
        if not isinstance(spec, dict):
            raise ScoringConfigError("a reward spec must be a JSON object", param="spec")
        base = spec
    else:
        if not isinstance(preset, str):
            raise ScoringConfigError("'preset' must be a preset name", param="preset")
        base_spec = get_preset(preset)
        if not overrides:
            return base_spec
        base = base_spec.to_dict()
    if overrides:
        if not isinstance(overrides, dict):
            raise ScoringConfigError("'overrides' must be an object", param="overrides")
        base = merge_overrides(base, overrides)
    return RewardSpec.from_dict(base)
