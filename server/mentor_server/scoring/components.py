"""The reward components: each turns one parsed rollout into a score in [0, 1] (or None) and a reason.

A component is a function `(ctx, options) -> ComponentResult`. `ctx` carries what the engine
computed once per item (the parsed rollout, the extracted answer and its verdict, the
toolset); `options` are the component's options from the spec, validated once per engine by
the component's `compile_options` so the per-item path does no validation.

None means "does not apply to this item" (arguments against a names-only reference, results
when the teacher recorded none, schema validity without a toolset); it is never used to hide
an error, and the spec decides whether not-applicable weights are skipped or redistributed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..toolsets import Toolset
from . import matching
from .answers import AnswerJudge
from .qa import qa_scores
from .types import ComponentResult, ParsedRollout, ScoringConfigError, ScoringItem, ToolCall


@dataclass(slots=True)
class ItemContext:
    """Facts about one item that several components share, computed once by the engine."""

    item: ScoringItem
    parsed: ParsedRollout
    toolset: Toolset | None
    answer: str | None
    correct: bool | None
    outcome_reason: str
    # Student calls whose name was read (the JSON parsed and had a name): the paper's "used tools".
    named_calls: tuple[ToolCall, ...] = field(default=())
    # Names among `named_calls` that the toolset does not know (empty without a toolset).
    invalid_names: tuple[str, ...] = field(default=())
    execution_cache: dict[tuple[str, str], str | None] | None = None


ComponentFn = Callable[[ItemContext, Any], ComponentResult]


def _options(options: Mapping[str, Any], allowed: Mapping[str, Any], component: str) -> dict[str, Any]:
    """Fill defaults and reject unknown option keys, naming the field."""
    for key in options:
        if key not in allowed:
            raise ScoringConfigError(
                f"unknown option {key!r} for component {component!r}; known: {', '.join(allowed) or 'none'}",
                param=f"components.{component}.options.{key}",
            )
    return {**allowed, **options}


def _flag(value: Any, param: str) -> bool:
    # `"no"` is truthy: a non-boolean must be an error, not a silently inverted option.
    if not isinstance(value, bool):
        raise ScoringConfigError(f"{param} must be true or false, got {value!r}", param=param)
    return value


def _choice(value: Any, choices: tuple[str, ...], param: str) -> str:
    if value not in choices:
        raise ScoringConfigError(f"{param} must be one of {', '.join(choices)}; got {value!r}", param=param)
    return str(value)


# ---------------------------------------------------------------------------- format
@dataclass(frozen=True, slots=True)
class FormatOptions:
    mode: str  # "mean": share of checks passed; "all": 1 only when every check passes (ToolRL)


def compile_format(options: Mapping[str, Any]) -> FormatOptions:
    opts = _options(options, {"mode": "mean"}, "format")
    return FormatOptions(mode=_choice(opts["mode"], ("mean", "all"), "components.format.options.mode"))


def format_component(ctx: ItemContext, options: FormatOptions) -> ComponentResult:
    parsed = ctx.parsed
    failed: list[str] = []
    if parsed.finished is False:
        failed.append("not finished")
    if any(not call.is_valid for call in parsed.calls):
        failed.append("malformed call")
    if parsed.format_errors:
        failed.append(parsed.format_errors[0])
    if not ctx.answer:
        failed.append("no answer")
    if options.mode == "all":
        score = 0.0 if failed else 1.0
    else:
        score = 1.0 - len(failed) / 4.0
    return ComponentResult(score, "well formed" if not failed else "; ".join(failed))


# ---------------------------------------------------------------------------- outcome
@dataclass(frozen=True, slots=True)
class OutcomeOptions:
    answer_from: str  # "boxed" or "boxed_or_final"
    judge: dict[str, Any]
    mode: str = "math"  # the judge's mode: "qa_f1" scores the F1 itself, the others 1/0


def compile_outcome(options: Mapping[str, Any]) -> OutcomeOptions:
    opts = _options(options, {"answer_from": "boxed", "judge": {}}, "outcome")
    answer_from = _choice(opts["answer_from"], ("boxed", "boxed_or_final"), "components.outcome.options.answer_from")
    judge_param = "components.outcome.options.judge"
    if not isinstance(opts["judge"], dict):
        raise ScoringConfigError(f"{judge_param} must be an object", param=judge_param)
    judge = dict(opts["judge"])
    try:
        AnswerJudge.check_options(**judge)
    except ScoringConfigError as exc:
        param = f"{judge_param}.{exc.param}" if exc.param else judge_param
        raise ScoringConfigError(str(exc), param=param) from exc
    return OutcomeOptions(answer_from=answer_from, judge=judge, mode=str(judge.get("mode", "math")))


def outcome_component(ctx: ItemContext, options: OutcomeOptions) -> ComponentResult:
    # The verdict itself is computed by the engine (gates and wrong-answer scaling need it first).
    if ctx.correct is None:
        return ComponentResult(None, ctx.outcome_reason)
    if options.mode == "qa_f1" and ctx.answer:
        # The score is the F1, and `correct` (F1 >= f1_threshold) only what wrong-answer scaling
        # reads. Recomputed from the same function the judge called, on the same inputs: token
        # F1 is linear in the text, and the engine's context carries the verdict, not its score.
        return ComponentResult(qa_scores(ctx.answer, ctx.item.ground_truth).f1, ctx.outcome_reason)
    return ComponentResult(1.0 if ctx.correct else 0.0, ctx.outcome_reason)


# ---------------------------------------------------------------------------- tool names
@dataclass(frozen=True, slots=True)
class ToolNamesOptions:
    mode: str
    count_invalid: bool  # include hallucinated names in the student's set


TOOL_NAME_MODES = ("exact_set", "any_overlap", "f1", "multiset_f1", "order")


def compile_tool_names(options: Mapping[str, Any]) -> ToolNamesOptions:
    opts = _options(options, {"mode": "f1", "count_invalid": True}, "tool_names")
    mode = _choice(opts["mode"], TOOL_NAME_MODES, "components.tool_names.options.mode")
    return ToolNamesOptions(mode=mode, count_invalid=_flag(opts["count_invalid"], "count_invalid"))


def tool_names_component(ctx: ItemContext, options: ToolNamesOptions) -> ComponentResult:
    teacher = ctx.item.reference.names
    names = [c.name for c in ctx.named_calls if c.name is not None]
    if not options.count_invalid and ctx.toolset is not None:
        known = ctx.toolset.names
        names = [n for n in names if n in known]
    score = matching.tool_name_score(names, teacher, options.mode)
    return ComponentResult(score, f"{options.mode} {score:.2f} ({len(names)} student vs {len(teacher)} teacher calls)")


# ---------------------------------------------------------------------------- arguments
def compile_arguments(options: Mapping[str, Any]) -> matching.ValueMatchOptions:
    try:
        return matching.ValueMatchOptions.from_dict(dict(options))
    except ScoringConfigError as exc:
        raise ScoringConfigError(str(exc), param=f"components.arguments.options.{exc.param or ''}".rstrip(".")) from exc


def arguments_component(ctx: ItemContext, options: matching.ValueMatchOptions) -> ComponentResult:
    reference = ctx.item.reference
    if reference.names_only or not reference.calls:
        return ComponentResult(None, "reference has no arguments")
    valid = [c for c in ctx.parsed.calls if c.is_valid]
    score, reason = matching.arguments_score(
        valid, reference.calls, possible_answers=reference.possible_answers, options=options
    )
    return ComponentResult(score, reason)


# ---------------------------------------------------------------------------- tool results
@dataclass(frozen=True, slots=True)
class ToolResultsOptions:
    execute_missing: bool  # run registered deterministic tools when the rollout shows no result
    values: matching.ValueMatchOptions


def compile_tool_results(options: Mapping[str, Any]) -> ToolResultsOptions:
    opts = _options(options, {"execute_missing": True, "values": {}}, "tool_results")
    if not isinstance(opts["values"], Mapping):
        raise ScoringConfigError("'values' must be an object of match options", param="values")
    try:
        values = matching.ValueMatchOptions.from_dict(dict(opts["values"]))
    except ScoringConfigError as exc:
        raise ScoringConfigError(str(exc), param=f"values.{exc.param}" if exc.param else "values") from exc
    return ToolResultsOptions(execute_missing=_flag(opts["execute_missing"], "execute_missing"), values=values)


_EXECUTION_CACHE_LIMIT = 20_000


def _student_results(ctx: ItemContext, execute: bool) -> list[ToolCall]:
    calls = [c for c in ctx.parsed.calls if c.is_valid]
    toolset = ctx.toolset
    if not execute or toolset is None:
        return calls
    filled: list[ToolCall] = []
    cache = ctx.execution_cache if ctx.execution_cache is not None else {}
    if len(cache) > _EXECUTION_CACHE_LIMIT:  # bounded memory over millions of items
        cache.clear()
    for call in calls:
        if call.result is None and call.name in toolset.names:
            tool = toolset.tools[call.name]
            if tool.executable:
                key = (call.name, json.dumps(call.arguments, sort_keys=True, default=str))
                if key not in cache:
                    run = toolset.execute(call.name, call.arguments)
                    cache[key] = run.content if run.ok else None
                result = cache[key]
                if result is not None:
                    call = ToolCall(call.name, call.arguments, call.raw, call.error, result)
        filled.append(call)
    return filled


def tool_results_component(ctx: ItemContext, options: ToolResultsOptions) -> ComponentResult:
    reference = ctx.item.reference
    if not any(c.result is not None for c in reference.calls):
        return ComponentResult(None, "reference has no tool results")
    calls = _student_results(ctx, options.execute_missing)
    score, reason = matching.results_score(calls, reference.calls, options=options.values)
    return ComponentResult(score, reason)


# ---------------------------------------------------------------------------- hallucination
@dataclass(frozen=True, slots=True)
class NoHallucinationOptions:
    mode: str  # "binary": 1 when no call names an unknown tool; "fraction": share of known-tool calls


def compile_no_hallucination(options: Mapping[str, Any]) -> NoHallucinationOptions:
    opts = _options(options, {"mode": "binary"}, "no_hallucination")
    return NoHallucinationOptions(
        mode=_choice(opts["mode"], ("binary", "fraction"), "components.no_hallucination.options.mode")
    )


def invalid_tool_names(named_calls: Sequence[ToolCall], toolset: Toolset | None) -> tuple[str, ...]:
    """The called names the toolset does not know (the paper's hallucinated tools)."""
    if toolset is None:
        return ()
    known = toolset.names
    return tuple(c.name for c in named_calls if c.name is not None and c.name not in known)


def no_hallucination_component(ctx: ItemContext, options: NoHallucinationOptions) -> ComponentResult:
    if ctx.toolset is None:
        return ComponentResult(None, "no toolset to check names against")
    invalid = ctx.invalid_names
    if options.mode == "binary":
        score = 0.0 if invalid else 1.0
    else:
        total = len(ctx.named_calls)
        score = 1.0 if total == 0 else 1.0 - len(invalid) / total
    reason = f"unknown tools: {', '.join(sorted(set(invalid)))}" if invalid else "all tools known"
    return ComponentResult(score, reason)


# ---------------------------------------------------------------------------- schema validity
def compile_no_options(component: str) -> Callable[[Mapping[str, Any]], None]:
    def compile_(options: Mapping[str, Any]) -> None:
        _options(options, {}, component)

    return compile_


def schema_valid_component(ctx: ItemContext, options: None) -> ComponentResult:
    toolset = ctx.toolset
    calls = ctx.parsed.calls
    if toolset is None or not calls:
        return ComponentResult(None, "no toolset" if toolset is None else "no calls")
    ok = 0
    first_problem = ""
    for call in calls:
        if not call.is_valid:
            first_problem = first_problem or f"malformed call: {call.error}"
            continue
        assert call.name is not None
        if call.name not in toolset.names:
            first_problem = first_problem or f"unknown tool {call.name!r}"
            continue
        errors = toolset.validate_arguments(call.name, call.arguments)
        if errors:
            first_problem = first_problem or f"{call.name}: {errors[0]}"
        else:
            ok += 1
    reason = f"{ok}/{len(calls)} calls valid" + (f"; {first_problem}" if first_problem else "")
    return ComponentResult(ok / len(calls), reason)


# ---------------------------------------------------------------------------- efficiency
@dataclass(frozen=True, slots=True)
class EfficiencyOptions:
    slack: int  # extra calls allowed beyond the teacher's before the score drops


def compile_efficiency(options: Mapping[str, Any]) -> EfficiencyOptions:
    opts = _options(options, {"slack": 0}, "efficiency")
    slack = opts["slack"]
    if not isinstance(slack, int) or isinstance(slack, bool) or slack < 0:
        raise ScoringConfigError(
            "efficiency slack must be a non-negative integer", param="components.efficiency.options.slack"
        )
    return EfficiencyOptions(slack=slack)


def efficiency_component(ctx: ItemContext, options: EfficiencyOptions) -> ComponentResult:
    student = len(ctx.parsed.calls)
    teacher = len(ctx.item.reference.calls)
    excess = max(0, student - teacher - options.slack)
    # 1 / (1 + excess): each extra call costs, with diminishing steps; fewer calls are not
    # punished here (the outcome and teacher-matching terms already see missing work).
    score = 1.0 / (1.0 + excess)
    return ComponentResult(score, f"{student} calls vs teacher's {teacher}")


# ---------------------------------------------------------------------------- strict
def compile_strict(options: Mapping[str, Any]) -> matching.ValueMatchOptions:
    return matching.ValueMatchOptions.from_dict(dict(options))


def strict_sequence_component(ctx: ItemContext, options: matching.ValueMatchOptions) -> ComponentResult:
    reference = ctx.item.reference
    valid = [c for c in ctx.parsed.calls if c.is_valid]
    if reference.names_only:
        same = [c.name for c in valid] == list(reference.names) and len(valid) == len(ctx.parsed.calls)
        return ComponentResult(1.0 if same else 0.0, "name sequence matches" if same else "name sequence differs")
    if len(valid) != len(ctx.parsed.calls):
        return ComponentResult(0.0, "malformed call")
    score = matching.strict_sequence_match(valid, reference.calls, options, possible_answers=reference.possible_answers)
    return ComponentResult(score, "exact replication" if score == 1.0 else "differs from the teacher's sequence")


# ---------------------------------------------------------------------------- ToolRL
def toolrl_correctness_component(ctx: ItemContext, options: None) -> ComponentResult:
    reference = ctx.item.reference
    if any(not c.is_valid for c in ctx.parsed.calls):
        # ToolRL: missing tags or bad JSON -> -3, i.e. 0 on the normalised scale.
        return ComponentResult(0.0, "malformed call: correctness -3")
    raw = matching.toolrl_correctness([c for c in ctx.parsed.calls if c.is_valid], reference.calls)
    return ComponentResult((raw + 3.0) / 6.0, f"ToolRL correctness {raw:+.3f}")


@dataclass(frozen=True, slots=True)
class ComponentDef:
    compile: Callable[[Mapping[str, Any]], Any]
    score: ComponentFn


COMPONENTS: dict[str, ComponentDef] = {
    "format": ComponentDef(compile_format, format_component),
    "outcome": ComponentDef(compile_outcome, outcome_component),
    "tool_names": ComponentDef(compile_tool_names, tool_names_component),
    "arguments": ComponentDef(compile_arguments, arguments_component),
    "tool_results": ComponentDef(compile_tool_results, tool_results_component),
    "no_hallucination": ComponentDef(compile_no_hallucination, no_hallucination_component),
    "schema_valid": ComponentDef(compile_no_options("schema_valid"), schema_valid_component),
    "efficiency": ComponentDef(compile_efficiency, efficiency_component),
    "strict_sequence": ComponentDef(compile_strict, strict_sequence_component),
    "toolrl_correctness": ComponentDef(compile_no_options("toolrl_correctness"), toolrl_correctness_component),
}
