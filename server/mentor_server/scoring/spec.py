"""Declarative reward specs: which components count, how much, and when a gate decides alone.

A spec is plain JSON (so it can travel in a request, sit in a YAML file and be hashed):

    {
      "toolset": "calculator",
      "gates": [{"when": "not_finished", "reward": 0.0}, {"when": "no_answer", "reward": 0.1}],
      "components": {
        "outcome":          {"weight": 0.7},
        "tool_names":       {"weight": 0.3, "wrong_answer_scale": 0.2, "options": {"mode": "exact_set"}},
        "no_hallucination": {"weight": 0.1}
      }
    }

The reward of an item is, unless a gate fires first (gates are tried in order):

    reward = bias + sum_c weight_c * score_c * (wrong_answer_scale_c if the outcome is wrong else 1)

over the components whose score is not None. With `none_policy: "renormalize"` the weights of
components that do not apply to an item (score None) are redistributed over those that do,
so the reward keeps its range. A weight of 0 means "computed and reported, not rewarded".

End of sequence. A spec does not assume a chat template: whether a rollout finished comes from
the item's `finished`, else from the request's `eos_tokens` (the model's own), else from the
spec's `eos_tokens` when it pins them, else from `DEFAULT_EOS_TOKENS`, the end tokens of the
common chat templates (ChatML, Llama 3, Mistral, Gemma, Phi, DeepSeek...). The legacy
single-token field `eos_token` is still read and becomes a one-entry `eos_tokens`.

Specs are validated with pydantic; every error names the field (`components.tool_names.weight`).
The hash is a digest of the canonical JSON form, so two equal specs share it whatever their
key order, and a training run can record exactly which reward it used.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .types import ScoringConfigError, field_path

DEFAULT_EOS_TOKENS: tuple[str, ...] = (
    "<|im_end|>",  # ChatML: Qwen, Hermes, SmolLM
    "<|eot_id|>",  # Llama 3
    "<|eom_id|>",  # Llama 3 (a turn that ends in a tool call)
    "</s>",  # Llama 2, Mistral
    "<|endoftext|>",  # GPT-2 style and many base models
    "<|end|>",  # Phi-3
    "<end_of_turn>",  # Gemma
    "<|eot|>",  # Llama 4
    "<|eom|>",  # Llama 4
    "<\uff5cend\u2581of\u2581sentence\uff5c>",  # DeepSeek
    "<|return|>",  # gpt-oss
)
"""What counts as an end-of-sequence token when neither the request nor the spec names one."""

COMPONENT_NAMES: tuple[str, ...] = (
    "format",
    "outcome",
    "tool_names",
    "arguments",
    "tool_results",
    "no_hallucination",
    "schema_valid",
    "efficiency",
    "strict_sequence",
    "toolrl_correctness",
)
"""Every component the engine knows. These names are public API: they are metric keys in users' logs."""

GATE_CONDITIONS: tuple[str, ...] = (
    "not_finished",
    "no_answer",
    "no_teacher_tools",
    "malformed_call",
    "no_calls",
)
"""When a gate fires:
- `not_finished`: the rollout did not end with the EOS token (or `finished` is false);
- `no_answer`: no non-empty `\\boxed{}` answer (or final text, per the outcome options);
- `no_teacher_tools`: the reference lists no teacher tool;
- `malformed_call`: some tool call could not be parsed;
- `no_calls`: the rollout made no tool call at all.
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ComponentSpec(_Strict):
    """One component's place in the reward."""

    weight: float = 0.0
    wrong_answer_scale: float = Field(default=1.0, ge=0.0, le=1.0)
    options: dict[str, Any] = Field(default_factory=dict)


class GateSpec(_Strict):
    """When `when` holds, the reward is `reward` and the weighted sum is skipped."""

    when: str
    reward: float

    @field_validator("when")
    @classmethod
    def _known_condition(cls, value: str) -> str:
        if value not in GATE_CONDITIONS:
            raise ValueError(f"unknown gate condition {value!r}; known: {', '.join(GATE_CONDITIONS)}")
        return value


class RewardSpec(_Strict):
    """A validated reward spec. Build it with `RewardSpec.from_dict` or `resolve_spec`."""

    name: str | None = None
    description: str = ""
    eos_tokens: tuple[str, ...] | None = None
    toolset: str | None = None
    parser: str = "auto"
    gates: tuple[GateSpec, ...] = ()
    components: dict[str, ComponentSpec]
    bias: float = 0.0
    none_policy: Literal["skip", "renormalize"] = "skip"
    clip: tuple[float, float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_eos_token(cls, data: Any) -> Any:
        # Specs written before `eos_tokens` existed name one token; read it as a list of one.
        if isinstance(data, dict) and "eos_token" in data:
            data = dict(data)
            legacy = data.pop("eos_token")
            if data.get("eos_tokens") is not None and legacy is not None:
                raise ValueError("give 'eos_tokens' (a list), not also the legacy 'eos_token'")
            if legacy is not None:
                data["eos_tokens"] = [legacy]
            # A null legacy token meant "unknown": no pinned tokens either way.
        return data

    @field_validator("eos_tokens")
    @classmethod
    def _eos_tokens_nonempty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or any(not token for token in value)):
            raise ValueError("eos_tokens must list at least one non-empty token (or be left out)")
        return value

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: dict[str, ComponentSpec]) -> dict[str, ComponentSpec]:
        unknown = [name for name in value if name not in COMPONENT_NAMES]
        if unknown:
            raise ValueError(f"unknown component {unknown[0]!r}; known: {', '.join(COMPONENT_NAMES)}")
        if not value:
            raise ValueError("a spec needs at least one component")
        return value

    @model_validator(mode="after")
    def _clip_ordered(self) -> RewardSpec:
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise ValueError("clip must be [low, high] with low <= high")
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardSpec:
        """Validate a plain dict; errors become `ScoringConfigError` naming the field."""
        if not isinstance(data, dict):
            raise ScoringConfigError("a reward spec must be a JSON object", param="spec")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = field_path(first["loc"]) or "spec"
            raise ScoringConfigError(f"invalid spec field '{path}': {first['msg']}", param=path) from exc

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what the hash covers)."""
        data = self.model_dump(mode="json")
        data["gates"] = list(data["gates"])
        return data

    # ------------------------------------------------------------------ derived facts
    @property
    def hash(self) -> str:
        """A stable digest of the spec's meaning (name and description excluded)."""
        data = self.to_dict()
        data.pop("name", None)
        data.pop("description", None)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def reward_range(self) -> tuple[float, float]:
        """The lowest and highest reward this spec can give (gates included)."""
        low = self.bias + sum(min(0.0, c.weight) for c in self.components.values())
        high = self.bias + sum(max(0.0, c.weight) for c in self.components.values())
        for gate in self.gates:
            low, high = min(low, gate.reward), max(high, gate.reward)
        if self.clip is not None:
            low, high = max(low, self.clip[0]), min(high, self.clip[1])
        return (round(low, 12), round(high, 12))

    def formula(self) -> str:
        """A human-readable formula, as `mentor-reward presets` prints it."""
        terms: list[str] = []
        for name, comp in self.components.items():
            if comp.weight == 0:
                continue
            mode = comp.options.get("mode")
            label = f"{name}[{mode}]" if mode else name
            term = f"{comp.weight:g}·{label}"
            if comp.wrong_answer_scale != 1.0:
                term += f" (×{comp.wrong_answer_scale:g} if wrong)"
            terms.append(term)
        body = " + ".join(terms) or "0"
        if self.bias:
            body = f"{self.bias:g} + {body}"
        if self.none_policy == "renormalize":
            body += "  [weights of not-applicable components redistributed]"
        logged = [name for name, comp in self.components.items() if comp.weight == 0]
        if logged:
            body += f"  [logged only: {', '.join(logged)}]"
        gates = "; ".join(f"{g.when} → {g.reward:g}" for g in self.gates)
        return f"{gates}; else {body}" if gates else body


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base` (dicts merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
