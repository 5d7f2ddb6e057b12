"""Wire models of the reward service's HTTP API (version 1).

These models live once, here, in the client package; the server imports them, so the two
sides cannot drift. They depend only on pydantic.

Strict requests, tolerant responses. A request body with a field the server does not know is
refused (400 `unknown_field` naming it): a misspelt `presett` must never quietly become some
default. Compatibility is kept by API version instead: every field of `/v1` keeps its meaning
for the life of `/v1`; a later server may *add* optional request fields (older clients never
send them), and a change that an older server must not silently ignore gets a new version
prefix. Response models ignore unknown fields, so a newer server may answer more.

Items are the exception to model validation on the server: `ScoreRequest.items` is read one
item at a time by the engine, so one malformed item (a number as `completion`, a misspelt
field) becomes that item's `error` and never fails its batch. `ScoreItem` describes the shape.

Every 4xx/5xx answer has the body `ErrorResponse`: `{"error": {"type", "message", "param"}}`;
`param` names the field in one notation: `items[3].reference.calls[0].name`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, WithJsonSchema, model_validator

API_PREFIX = "/v1"


class _Wire(BaseModel):
    """Responses (and the values inside them): unknown fields from a newer server are ignored."""

    model_config = ConfigDict(extra="ignore")


class _Request(BaseModel):
    """Request bodies: an unknown field is an error (module docstring)."""

    model_config = ConfigDict(extra="forbid")


def _one_reward(preset: str | None, spec: dict[str, Any] | None) -> None:
    # There is no default reward: naming none is almost always a misspelt field.
    if preset is None and spec is None:
        raise ValueError("name the reward: 'preset' (see GET /v1/presets) or an inline 'spec'")


# ---------------------------------------------------------------------------- errors
class ErrorInfo(_Wire):
    """What went wrong. `type` is a stable machine-readable word; `param` names the field."""

    type: str
    message: str
    param: str | None = None


class ErrorResponse(_Wire):
    error: ErrorInfo


# ---------------------------------------------------------------------------- scoring
class ReferenceCallModel(_Request):
    """One call of the teacher's trace. `result` is what the tool returned to the teacher."""

    name: str = Field(description="The tool the teacher called.", examples=["multiply"])
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="The call's arguments, by parameter name.",
        examples=[{"a": 12, "b": 7}],
    )
    result: Any = Field(
        default=None,
        description="What the tool returned to the teacher (compared by the `tool_results` component).",
        examples=[84],
    )


class ReferenceModel(_Request):
    """The teacher's reference trace: calls in order and the final answer.

    With `possible_answers: true` every argument value is a list of acceptable values and
    `""` in that list marks the parameter optional (BFCL's convention).
    """

    calls: list[ReferenceCallModel] = Field(
        default_factory=list,
        description="The teacher's tool calls, in order.",
        examples=[[{"name": "multiply", "arguments": {"a": 12, "b": 7}, "result": 84}]],
    )
    answer: str | None = Field(
        default=None,
        description="The teacher's final answer; the item's ground truth when it has none of its own.",
        examples=["84"],
    )
    possible_answers: bool = Field(
        default=False,
        description='Each argument value is a list of acceptable values; `""` in it marks the parameter optional.',
        examples=[False],
    )


class ScoreItem(_Request):
    """One rollout to score.

    `completion`: the rollout as raw text, or as a chat message list (OpenAI/TRL format,
    assistant `tool_calls` with `arguments` as dict or JSON string, `tool` messages).
    `ground_truth`: the acceptable answer(s), text or numbers; falls back to `reference.answer`.
    Give either `reference` (a full trace) or `teacher_tools` (names only, as in the paper).
    `finished`: whether generation ended with the end-of-sequence token; when absent the
    engine looks for the request's `eos_tokens` at the end of the text.
    A `null` field is the same as an absent one, and so is a `null` argument value in a
    reference call (Arrow-backed datasets fill the keys a row lacks with null).
    """

    completion: str | list[dict[str, Any]] = Field(
        description="The rollout: raw model text, or a chat message list (OpenAI/TRL format).",
        examples=[
            '<tool_call>{"name": "multiply", "arguments": {"a": 12, "b": 7}}</tool_call>'
            "<tool_response>84</tool_response>The answer is \\boxed{84}.<|im_end|>"
        ],
    )
    ground_truth: str | StrictInt | StrictFloat | list[str | StrictInt | StrictFloat] | None = Field(
        default=None,
        description="The acceptable answer(s); absent: `reference.answer`.",
        examples=["84"],
    )
    reference: ReferenceModel | None = Field(
        default=None,
        description="The teacher's full trace (calls with arguments and results, answer). Or give `teacher_tools`.",
        examples=[{"calls": [{"name": "multiply", "arguments": {"a": 12, "b": 7}, "result": 84}], "answer": "84"}],
    )
    teacher_tools: list[str] | None = Field(
        default=None,
        description="The names of the tools the teacher used (the paper's names-only reference).",
        examples=[["multiply"]],
    )
    finished: bool | None = Field(
        default=None,
        description="Whether generation ended with the end-of-sequence token; absent: read from `eos_tokens`.",
        examples=[True],
    )


def _inlined_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$defs` inlined, to document a field validated elsewhere."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


_PRESET = "A reward preset by name (see GET /v1/presets). Give `preset` or `spec`, not both."
_SPEC = "An inline reward spec (components, weights, gates): see docs/rewards.md. Give `preset` or `spec`."
_SPEC_EXAMPLE: dict[str, Any] = {
    "toolset": "calculator",
    "components": {"outcome": {"weight": 0.8}, "tool_names": {"weight": 0.2, "options": {"mode": "f1"}}},
}
_OVERRIDES = "Merged into the preset or spec, e.g. to change one component's weight."
_OVERRIDES_EXAMPLE: dict[str, Any] = {"components": {"efficiency": {"weight": 0.1}}}
_TOOL_EXAMPLE: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "multiply",
        "description": "Multiply two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}
_ITEM_EXAMPLE: dict[str, Any] = {
    "completion": '<tool_call>{"name": "multiply", "arguments": {"a": 12, "b": 7}}</tool_call>'
    "<tool_response>84</tool_response>The answer is \\boxed{84}.<|im_end|>",
    "ground_truth": "84",
    "teacher_tools": ["multiply"],
}


class ScoreRequest(_Request):
    """A batch to score.

    Name the reward by `preset` (a name) or `spec` (an inline reward spec), exactly one;
    `overrides` are merged into either (e.g. `{"components": {"efficiency": {"weight": 0.1}}}`).
    Choose tools by `toolset` (a registered name) or `tools` (inline OpenAI-format tool
    schemas). `parser` is a registered parser name or "auto".
    `eos_tokens`: the policy model's end-of-sequence token(s) (e.g. `["<|eot_id|>"]`); a text
    completion that ends with one is finished, one that does not is truncated. Without it the
    end tokens of the common chat templates count (`DEFAULT_EOS_TOKENS` in the engine's spec
    module); an item's own `finished` always wins.
    `items` are objects shaped like `ScoreItem`, each read on its own (module docstring).
    `run_id` / `step` label the items in the score record when recording is enabled.
    `reasons: false` leaves each result's `reason` text out of the answer (most of its bytes)
    for trainers that read only rewards and components; an item's `error` keeps its message,
    and the score record keeps the reasons.
    """

    preset: str | None = Field(default=None, description=_PRESET, examples=["mentor"])
    spec: dict[str, Any] | None = Field(default=None, description=_SPEC, examples=[_SPEC_EXAMPLE])
    overrides: dict[str, Any] | None = Field(default=None, description=_OVERRIDES, examples=[_OVERRIDES_EXAMPLE])
    toolset: str | None = Field(
        default=None,
        description="A registered toolset (see GET /v1/toolsets); calls to other tools count as invented.",
        examples=["calculator"],
    )
    tools: list[dict[str, Any]] | None = Field(
        default=None,
        description="Inline tool schemas (OpenAI format), instead of `toolset`.",
        examples=[[_TOOL_EXAMPLE]],
    )
    parser: str = Field(
        default="auto",
        description="How tool calls are read from text: a registered parser name, or `auto`.",
        examples=["auto", "hermes"],
    )
    eos_tokens: list[str] | None = Field(
        default=None,
        description="The policy model's end-of-sequence token(s); absent: the common chat templates' end tokens.",
        examples=[["<|im_end|>"]],
    )
    items: list[Annotated[Any, WithJsonSchema(_inlined_schema(ScoreItem))]] = Field(
        description="The rollouts, each shaped like ScoreItem and read on its own.",
        examples=[[_ITEM_EXAMPLE]],
    )
    run_id: str | None = Field(
        default=None, description="Labels the items in the score record.", examples=["grpo-mentor-seed0"]
    )
    step: int | None = Field(default=None, description="The training step, for the score record.", examples=[120])
    reasons: StrictBool = Field(  # strict: "no" or 0 must not quietly mean false
        default=True,
        description=(
            "Whether each result carries its `reason` text. `false` leaves it out (about two thirds of a "
            "response's bytes) for trainers that read only rewards and components; an item's `error` keeps "
            "its message, and the score record keeps the reasons."
        ),
        examples=[False],
    )

    @model_validator(mode="after")
    def _names_a_reward(self) -> ScoreRequest:
        _one_reward(self.preset, self.spec)
        return self


class ItemResult(_Wire):
    """The score of one item. `reward` is None only when `error` is set."""

    reward: float | None
    components: dict[str, float | None] = Field(default_factory=dict)
    reason: str = ""  # absent (so "") when the request asked for `reasons: false`
    error: ErrorInfo | None = None
    # Tool calls in the rollout and how many named no tool of the toolset. Optional so that a
    # client can recompute `BatchStats.invalid_tool_rate` exactly over a batch sent in chunks.
    n_tool_calls: int | None = None
    n_invalid_tools: int | None = None
    # The spec's gate that decided the reward (`not_finished`, `no_answer`, ...), if one did:
    # the reward is then the gate's value, not the weighted sum of `components`.
    gate: str | None = None


class BatchStats(_Wire):
    """Aggregates over the batch (items with an error are left out of the means)."""

    n_items: int
    n_errors: int
    mean_reward: float | None
    component_means: dict[str, float | None] = Field(default_factory=dict)
    tool_call_rate: float | None = None
    invalid_tool_rate: float | None = None


class ScoreResponse(_Wire):
    results: list[ItemResult]
    spec_hash: str
    preset: str | None = None
    stats: BatchStats


# ---------------------------------------------------------------------------- discovery
class PresetInfo(_Wire):
    name: str
    description: str
    formula: str
    reward_range: tuple[float, float]
    spec: dict[str, Any]
    spec_hash: str


class PresetList(_Wire):
    presets: list[PresetInfo]


class ToolsetInfo(_Wire):
    name: str
    description: str = ""
    tools: list[dict[str, Any]]
    executable: list[str] = Field(default_factory=list)


class ToolsetList(_Wire):
    toolsets: list[ToolsetInfo]


class ValidateSpecRequest(_Request):
    """Check a reward choice exactly as `/v1/score` would (same code path, options included)."""

    preset: str | None = Field(default=None, description=_PRESET, examples=["mentor-f1"])
    spec: dict[str, Any] | None = Field(default=None, description=_SPEC, examples=[_SPEC_EXAMPLE])
    overrides: dict[str, Any] | None = Field(default=None, description=_OVERRIDES, examples=[_OVERRIDES_EXAMPLE])

    @model_validator(mode="after")
    def _names_a_reward(self) -> ValidateSpecRequest:
        _one_reward(self.preset, self.spec)
        return self


class ValidateSpecResponse(_Wire):
    spec: dict[str, Any]
    spec_hash: str
    # The lowest and highest reward the spec can give (gates included), e.g. to rescale to [0, 1].
    reward_range: tuple[float, float] | None = None


# ---------------------------------------------------------------------------- tools
class ExecuteToolRequest(_Request):
    """Run one registered deterministic tool (never code sent in the request)."""

    toolset: str = Field(
        default="calculator", description="A registered toolset (see GET /v1/toolsets).", examples=["calculator"]
    )
    name: str = Field(description="The tool to run, one of the toolset's executable tools.", examples=["multiply"])
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="The call's arguments, checked against the tool's schema.",
        examples=[{"a": 12, "b": 7}],
    )


class ExecuteToolResponse(_Wire):
    """`content` is the text to show the model (the result, or the tool's error message)."""

    ok: bool
    result: Any = None
    content: str
    error: ErrorInfo | None = None


# ---------------------------------------------------------------------------- OpenRLHF
class OpenRLHFRequest(_Request):
    """OpenRLHF's remote reward body (`--reward.remote_url`).

    `labels[i]` carries the reference for `query[i]`: a plain string (the ground truth), or a
    JSON object / JSON-encoded string `{"ground_truth": ..., "teacher_tools": [...] |
    "reference": {...}, "preset": ..., "toolset": ..., "finished": ..., "eos_tokens": [...]}`.
    """

    query: list[str] = Field(
        description="Each sample's full text (prompt and response), as OpenRLHF sends it.",
        examples=[
            ["<|im_start|>user\nWhat is 12*7?<|im_end|>\n<|im_start|>assistant\nThe answer is \\boxed{84}.<|im_end|>"]
        ],
    )
    prompts: list[str] = Field(
        default_factory=list,
        description="Each sample's prompt; the response is `query[i]` after it.",
        examples=[["<|im_start|>user\nWhat is 12*7?<|im_end|>\n<|im_start|>assistant\n"]],
    )
    labels: list[Any] = Field(
        default_factory=list,
        description="Each sample's reference: the ground truth, or a JSON object (see above).",
        examples=[[{"ground_truth": "84", "teacher_tools": ["multiply"]}]],
    )


class OpenRLHFResponse(_Wire):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]] = Field(default_factory=dict)


# ---------------------------------------------------------------------------- records
class ScoreRecord(_Wire):
    """One scored item as recorded (what the paper's training code saved per step)."""

    run_id: str | None
    step: int | None
    spec_hash: str
    preset: str | None
    item: dict[str, Any]
    reward: float | None
    components: dict[str, float | None]
    reason: str
    error: ErrorInfo | None = None
    created_at: float


class RecordList(_Wire):
    """One page of records; `next_offset` asks for the next page (None after the last)."""

    records: list[ScoreRecord]
    next_offset: int | None = None


class RecordingHealth(_Wire):
    """Whether the score record works: `off`, `ok`, or `degraded` with the reason."""

    status: Literal["off", "ok", "degraded"]
    message: str | None = None


class HealthResponse(_Wire):
    status: Literal["ok", "ready", "not_ready"]
    version: str = ""
    recording: RecordingHealth | None = None
