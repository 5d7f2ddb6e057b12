"""The scoring engine: parse each rollout once, judge its answer, run the spec's components, combine.

The path of one request, whatever the entry point (service, CLI, local backend, adapters):

1. `resolve_engine_config(preset=..., spec=..., overrides=..., toolset=..., tools=..., parser=...,
   eos_tokens=...)` validates the reward choice once (`compile_spec` checks every component's
   options and the judge's) into an `EngineConfig`: frozen, picklable, what an engine is built
   from. A mistake is a `ScoringConfigError` naming the field (`components.x.options.y`).
2. `EngineCache.get(config)` returns the engine for it, built once per process and reused (the
   judge's and the tool executions' caches survive across batches).
3. `ScoringEngine.score_dicts(items, start)` reads each wire item (`items.item_from_dict`) and
   scores it; an item that cannot be read or scored is that item's `ItemScore.error`, named by
   its index in the request (`items[start + i].field`), and its neighbours are scored as usual.

Work shared across a batch is cached: the judge keeps parsed gold answers and verdicts (GRPO
scores `num_generations` rollouts per gold), toolsets keep compiled JSON-schema validators, tool
executions are memoised per argument set.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..toolsets import Toolset, get_toolset, toolset_from_schemas
from .answers import AnswerJudge, extract_boxed
from .components import COMPONENTS, ItemContext, OutcomeOptions, invalid_tool_names
from .items import item_from_dict
from .parsing import get_parser, named_calls, parse_completion
from .parsing.messages import content_text
from .presets import resolve_spec
from .spec import DEFAULT_EOS_TOKENS, RewardSpec
from .types import (
    ComponentResult,
    ItemError,
    ItemScore,
    ParsedRollout,
    ScoringConfigError,
    ScoringItem,
    join_path,
)

_MAX_EOS_TOKENS = 16


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True, slots=True)
class CompiledComponent:
    name: str
    weight: float
    wrong_answer_scale: float
    options: Any  # what the component's `compile` returned


@dataclass(frozen=True, slots=True)
class CompiledSpec:
    """A spec whose every option has been checked and compiled; picklable (it travels to workers)."""

    spec: RewardSpec
    hash: str
    components: tuple[CompiledComponent, ...]
    answer_from: str
    judge_options: Mapping[str, Any]


def compile_spec(spec: RewardSpec) -> CompiledSpec:
    """Check and compile every component option and the judge's options; errors name the full path.

    This is the one validation of a spec's options: `/v1/specs/validate` and scoring both call it.
    """
    compiled: list[CompiledComponent] = []
    for name, comp in spec.components.items():
        prefix = f"components.{name}.options"
        try:
            options = COMPONENTS[name].compile(comp.options)
        except ScoringConfigError as exc:
            raise ScoringConfigError(str(exc), param=_under(prefix, exc.param)) from exc
        compiled.append(CompiledComponent(name, comp.weight, comp.wrong_answer_scale, options))
    # The answer is judged for every spec (gates and wrong-answer scaling need the verdict),
    # with the outcome component's options when it has them.
    outcome = next((c.options for c in compiled if c.name == "outcome"), None)
    if outcome is None:
        outcome = COMPONENTS["outcome"].compile({})
    assert isinstance(outcome, OutcomeOptions)
    judge_param = "components.outcome.options.judge"
    try:
        AnswerJudge.check_options(**outcome.judge)
    except ScoringConfigError as exc:
        raise ScoringConfigError(str(exc), param=_under(judge_param, exc.param)) from exc
    return CompiledSpec(spec, spec.hash, tuple(compiled), outcome.answer_from, dict(outcome.judge))


def _under(prefix: str, param: str | None) -> str:
    # Component compilers name options relative to their own options, or already in full.
    if param and param.startswith("components."):
        return param
    return join_path(prefix, param)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything an engine is built from, validated: the compiled spec, the tools, the parser and
    the model's end-of-sequence tokens. Picklable; `key` identifies the engine it builds."""

    spec: CompiledSpec
    toolset: str | None = None
    tools: tuple[Mapping[str, Any], ...] | None = None
    tools_key: str = ""
    parser: str = "auto"
    eos_tokens: tuple[str, ...] | None = None

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...] | None]:
        return (self.spec.hash, self.tools_key or f"name:{self.toolset or ''}", self.parser, self.eos_tokens)


def resolve_engine_config(
    *,
    preset: str | None = None,
    spec: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    toolset: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    parser: str = "auto",
    eos_tokens: Sequence[str] | None = None,
) -> EngineConfig:
    """Validate a reward choice into an `EngineConfig` (the one validation of every entry point).

    Exactly one of `preset` and `spec` must be given: there is no default reward.
    """
    resolved = resolve_spec(
        preset=preset,
        spec=dict(spec) if spec is not None else None,
        overrides=dict(overrides) if overrides is not None else None,
    )
    compiled = compile_spec(resolved)
    inline = None
    if tools is not None:
        inline = tuple(dict(t) for t in tools)
    resolve_toolset(toolset, inline)  # a bad schema or an unknown name fails here, naming the field
    if not isinstance(parser, str):
        raise ScoringConfigError("'parser' must be a parser name", param="parser")
    get_parser(parser)  # an unknown name names `parser`
    return EngineConfig(
        spec=compiled,
        toolset=None if inline else toolset,
        tools=inline,
        tools_key=tools_key(inline),
        parser=parser,
        eos_tokens=check_eos_tokens(eos_tokens),
    )


def check_eos_tokens(tokens: Sequence[str] | None, param: str = "eos_tokens") -> tuple[str, ...] | None:
    if tokens is None:
        return None
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ScoringConfigError("'eos_tokens' must be a list of strings", param=param)
    if not tokens or len(tokens) > _MAX_EOS_TOKENS:
        raise ScoringConfigError(f"'eos_tokens' must list 1 to {_MAX_EOS_TOKENS} tokens", param=param)
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not token or len(token) > 64:
            raise ScoringConfigError("each end-of-sequence token must be a non-empty string", param=f"{param}[{i}]")
    return tuple(tokens)


class ScoringEngine:
    """Scores items under one spec and toolset. Build once (or get one from `EngineCache`), reuse."""

    def __init__(
        self,
        spec: RewardSpec | CompiledSpec,
        toolset: Toolset | None = None,
        parser: str | None = None,
        eos_tokens: Sequence[str] | None = None,
    ) -> None:
        compiled = spec if isinstance(spec, CompiledSpec) else compile_spec(spec)
        self.compiled = compiled
        self.spec = compiled.spec
        if toolset is None and self.spec.toolset is not None:
            toolset = get_toolset(self.spec.toolset)
        self.toolset = toolset
        # A request's explicit parser wins; "auto" defers to the spec's choice.
        self.parser = parser if parser not in (None, "auto") else self.spec.parser
        # The model's tokens (the request's) win over the spec's; with neither, the common ones.
        self.eos_tokens: tuple[str, ...] = tuple(eos_tokens or self.spec.eos_tokens or DEFAULT_EOS_TOKENS)
        self._components = compiled.components
        self._answer_from = compiled.answer_from
        self.judge = AnswerJudge(**compiled.judge_options)
        self._total_weight = sum(c.weight for c in self._components if c.weight > 0)
        # Only the outcome component and wrong-answer scaling read the verdict: a spec with
        # neither is not held up (nor failed) by judging an answer it never uses.
        self._needs_verdict = any(c.name == "outcome" or c.wrong_answer_scale != 1.0 for c in self._components)
        self._execution_cache: dict[tuple[str, str], str | None] = {}
        self._gates = [(g.when, g.reward) for g in self.spec.gates]

    @classmethod
    def from_config(cls, config: EngineConfig) -> ScoringEngine:
        return cls(config.spec, resolve_toolset(config.toolset, config.tools), config.parser, config.eos_tokens)

    # ------------------------------------------------------------------ public API
    def score_batch(self, items: Sequence[ScoringItem]) -> list[ItemScore]:
        return [self.score_item_safely(item) for item in items]

    def score_dicts(self, items: Sequence[Any], start: int = 0) -> list[ItemScore]:
        """Score wire-shaped items (JSON objects); item `i` is named `items[start + i]` in errors."""
        return [self.score_raw_item(raw, start + i) for i, raw in enumerate(items)]

    def score_raw_item(self, raw: Any, index: int) -> ItemScore:
        where = f"items[{index}]"
        try:
            item = item_from_dict(raw)
        except ScoringConfigError as exc:
            return _error_score("invalid_item", f"{join_path(where, exc.param)}: {exc}", join_path(where, exc.param))
        except RecursionError:
            return _error_score("too_deep", f"{where}: the item nests too deeply to read", where)
        score = self.score_item_safely(item)
        if score.error is not None and score.error.param is None:
            return replace(score, error=replace(score.error, param=where))
        return score

    def score_item_safely(self, item: ScoringItem) -> ItemScore:
        try:
            score = self.score_item(item)
        except ScoringConfigError as exc:
            return _error_score("invalid_item", str(exc), exc.param)
        except RecursionError:
            return _error_score("too_deep", "the item nests too deeply to score", None)
        except Exception as exc:  # an engine bug must not fail the batch; it is reported, not zeroed
            return _error_score("internal_error", f"{type(exc).__name__}: {exc}", None)
        if score.error is None and (score.reward is None or not math.isfinite(score.reward)):
            # A spec with extreme weights can overflow: say so rather than send a null or inf reward.
            return _error_score("non_finite_reward", f"the reward is not a finite number ({score.reward!r})", None)
        return score

    def score_item(self, item: ScoringItem) -> ItemScore:
        spec = self.spec
        finished = item.finished
        if finished is None:
            finished = completion_finished(item.completion, self.eos_tokens)
        parsed = parse_completion(item.completion, parser=self.parser, eos_token=None, finished=finished)
        answer = self._answer(parsed)
        correct: bool | None
        if not self._needs_verdict:
            correct, outcome_reason = None, "not judged (the spec does not use the answer)"
        elif not item.ground_truth:
            correct, outcome_reason = None, "no ground truth"
        elif not answer:
            correct, outcome_reason = False, "no answer"
        else:
            verdict = self.judge.judge(answer, item.ground_truth)
            if verdict.error is not None:
                # The judge could not decide: not a wrong answer, and not a reward (docs/rewards.md).
                return _error_score(verdict.error, f"the answer judge could not decide: {verdict.reason}", None)
            correct, outcome_reason = verdict.correct, verdict.reason
        named = named_calls(parsed)
        invalid = invalid_tool_names(named, self.toolset)
        ctx = ItemContext(
            item, parsed, self.toolset, answer, correct, outcome_reason, named, invalid, self._execution_cache
        )

        # Components are computed even when a gate decides the reward: the logged component
        # means then still show what gated rollouts did (e.g. hallucinated tools when truncated).
        results: dict[str, ComponentResult] = {}
        for comp in self._components:
            results[comp.name] = COMPONENTS[comp.name].score(ctx, comp.options)
        components = {name: _finite(r.score) for name, r in results.items()}

        gate = self._fired_gate(parsed, answer, item)
        if gate is not None:
            when, value = gate
            reason = f"gate {when} → {value:g}"
            return ItemScore(value, components, reason, None, len(parsed.calls), len(invalid), when)

        reward = spec.bias
        wrong = correct is False
        applicable_weight = 0.0
        weighted = 0.0
        for comp in self._components:
            score = components[comp.name]
            if score is None or comp.weight == 0:
                continue
            if comp.weight > 0:
                applicable_weight += comp.weight
            weighted += comp.weight * score * (comp.wrong_answer_scale if wrong else 1.0)
        if spec.none_policy == "renormalize" and 0 < applicable_weight < self._total_weight:
            weighted *= self._total_weight / applicable_weight
        reward += weighted
        if spec.clip is not None:
            reward = min(max(reward, spec.clip[0]), spec.clip[1])
        reason = "; ".join(f"{name}={_fmt(r.score)} ({r.reason})" for name, r in results.items())
        return ItemScore(reward, components, reason, None, len(parsed.calls), len(invalid))

    # ------------------------------------------------------------------ helpers
    def _answer(self, parsed: ParsedRollout) -> str | None:
        boxed = extract_boxed(parsed.full_text)
        if boxed is not None and boxed.strip():
            return boxed.strip()
        if self._answer_from == "boxed_or_final":
            final = parsed.answer_text.strip()
            return final or None
        return None

    def _fired_gate(self, parsed: ParsedRollout, answer: str | None, item: ScoringItem) -> tuple[str, float] | None:
        for when, value in self._gates:
            if when == "not_finished":
                fired = parsed.finished is False
            elif when == "no_answer":
                fired = not answer
            elif when == "no_teacher_tools":
                fired = not item.reference.calls
            elif when == "malformed_call":
                fired = any(not c.is_valid for c in parsed.calls)
            else:  # "no_calls"
                fired = not parsed.calls
            if fired:
                return when, value
        return None


def _fmt(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.3g}"


def _finite(score: float | None) -> float | None:
    return score if score is None or math.isfinite(score) else None


def _error_score(kind: str, message: str, param: str | None) -> ItemScore:
    return ItemScore(None, {}, message, ItemError(kind, message, param))


def completion_finished(completion: str | list[dict[str, Any]], eos_tokens: tuple[str, ...]) -> bool | None:
    """Did the rollout end with one of the model's end-of-sequence tokens?

    Text: True or False. A message list: True when the last assistant message ends with one,
    else unknown (None): chat frameworks strip special tokens from message contents, so their
    absence says nothing; the caller's `finished` is what tells truncation there.
    """
    if isinstance(completion, str):
        return completion.rstrip().endswith(eos_tokens)
    for message in reversed(completion):
        if isinstance(message, dict) and message.get("role") == "assistant":
            text = content_text(message.get("content"))
            return True if text is not None and text.rstrip().endswith(eos_tokens) else None
    return None


# ---------------------------------------------------------------------------- engine reuse
def tools_key(tools: Sequence[Mapping[str, Any]] | None) -> str:
    """A short stable key for inline tool schemas ("" when there are none)."""
    if not tools:
        return ""
    canonical = json.dumps([dict(t) for t in tools], sort_keys=True, separators=(",", ":"), default=str)
    return "inline:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolve_toolset(name: str | None, tools: Sequence[Mapping[str, Any]] | None) -> Toolset | None:
    """A request's toolset: a registered name or inline schemas, not both; with neither, the
    engine falls back to the spec's toolset."""
    if tools is not None:
        if name is not None:
            raise ScoringConfigError("give either 'toolset' or 'tools', not both", param="tools")
        if not tools:
            raise ScoringConfigError("'tools' must list at least one tool schema (or be left out)", param="tools")
        return toolset_from_schemas([dict(t) for t in tools])
    if name:
        return get_toolset(name)
    return None


class EngineCache:
    """Engines built once per `EngineConfig.key` and reused, least recently used evicted.

    The service's workers and the client's local backend both keep engines across batches (an
    engine holds the judge's and the tool executions' caches). Safe to share between threads.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._engines: OrderedDict[tuple[Any, ...], ScoringEngine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, config: EngineConfig) -> ScoringEngine:
        key = config.key
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
        engine = ScoringEngine.from_config(config)
        with self._lock:
            self._engines[key] = engine
            while len(self._engines) > self._size:
                self._engines.popitem(last=False)
        return engine

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()
