"""The scoring engine: parse each rollout once, judge its answer, run the spec's components, combine.

`ScoringEngine(spec, toolset)` compiles the spec's options and builds the answer judge once;
`score_batch` then scores a list of items. Work shared across the batch is cached: the judge
keeps parsed gold answers and verdicts (GRPO scores `num_generations` rollouts per gold),
toolsets keep compiled JSON-schema validators, tool executions are memoised per argument set.

An item never fails its batch: malformed model output is scored; an item that cannot be read
(bad reference, wrong types) or that trips an unexpected error gets `reward=None` and an
`error`, and its neighbours are scored as usual.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..toolsets import Toolset, get_toolset, toolset_from_schemas
from .answers import AnswerJudge, extract_boxed, strip_boxed
from .components import COMPONENTS, ItemContext, OutcomeOptions, invalid_tool_names
from .parsing import named_calls, parse_completion
from .spec import RewardSpec
from .types import (
    ComponentResult,
    ItemError,
    ItemScore,
    ParsedRollout,
    ReferenceCall,
    ReferenceTrace,
    ScoringConfigError,
    ScoringItem,
)


class ScoringEngine:
    """Scores items under one spec and toolset. Build once, reuse for many batches."""

    def __init__(self, spec: RewardSpec, toolset: Toolset | None = None, parser: str | None = None) -> None:
        self.spec = spec
        if toolset is None and spec.toolset is not None:
            toolset = get_toolset(spec.toolset)
        self.toolset = toolset
        # A request's explicit parser wins; "auto" defers to the spec's choice.
        self.parser = parser if parser not in (None, "auto") else spec.parser
        self._compiled: list[tuple[str, float, float, Any]] = []
        for name, comp in spec.components.items():
            options = COMPONENTS[name].compile(comp.options)
            self._compiled.append((name, comp.weight, comp.wrong_answer_scale, options))
        # The answer is judged for every spec (gates and wrong-answer scaling need the verdict),
        # with the outcome component's options when it has them.
        outcome_options = next((o for n, _, _, o in self._compiled if n == "outcome"), None)
        if outcome_options is None:
            outcome_options = COMPONENTS["outcome"].compile({})
        assert isinstance(outcome_options, OutcomeOptions)
        self._answer_from = outcome_options.answer_from
        judge_param = "components.outcome.options.judge"
        try:
            self.judge = AnswerJudge(**outcome_options.judge)
        except TypeError as exc:
            raise ScoringConfigError(f"invalid judge option: {exc}", param=judge_param) from exc
        except ScoringConfigError as exc:
            param = f"{judge_param}.{exc.param}" if exc.param else judge_param
            raise ScoringConfigError(str(exc), param=param) from exc
        self._total_weight = sum(w for _, w, _, _ in self._compiled if w > 0)
        self._execution_cache: dict[tuple[str, str], str | None] = {}
        self._gates = [(g.when, g.reward) for g in spec.gates]

    # ------------------------------------------------------------------ public API
    def score_batch(self, items: Sequence[ScoringItem]) -> list[ItemScore]:
        return [self.score_item_safely(item) for item in items]

    def score_dicts(self, items: Iterable[Mapping[str, Any]]) -> list[ItemScore]:
        """Score wire-shaped dicts; an item that cannot be read becomes an error result."""
        out: list[ItemScore] = []
        for index, raw in enumerate(items):
            try:
                item = item_from_dict(raw)
            except ScoringConfigError as exc:
                param = f"items[{index}].{exc.param}" if exc.param else f"items[{index}]"
                out.append(_error_score("invalid_item", str(exc), param))
                continue
            out.append(self.score_item_safely(item))
        return out

    def score_item_safely(self, item: ScoringItem) -> ItemScore:
        try:
            return self.score_item(item)
        except ScoringConfigError as exc:
            return _error_score("invalid_item", str(exc), exc.param)
        except RecursionError:
            return _error_score("too_deep", "the item nests too deeply to score", None)
        except Exception as exc:  # an engine bug must not fail the batch; it is reported, not zeroed
            return _error_score("internal_error", f"{type(exc).__name__}: {exc}", None)

    def score_item(self, item: ScoringItem) -> ItemScore:
        spec = self.spec
        parsed = parse_completion(item.completion, parser=self.parser, eos_token=spec.eos_token, finished=item.finished)
        answer = self._answer(parsed)
        correct: bool | None
        if not item.ground_truth:
            correct, outcome_reason = None, "no ground truth"
        elif not answer:
            correct, outcome_reason = False, "no answer"
        else:
            verdict = self.judge.judge(answer, item.ground_truth)
            correct, outcome_reason = verdict.correct, verdict.reason
        named = named_calls(parsed)
        invalid = invalid_tool_names(named, self.toolset)
        ctx = ItemContext(
            item, parsed, self.toolset, answer, correct, outcome_reason, named, invalid, self._execution_cache
        )

        # Components are computed even when a gate decides the reward: the logged component
        # means then still show what gated rollouts did (e.g. hallucinated tools when truncated).
        results: dict[str, ComponentResult] = {}
        for name, _weight, _scale, options in self._compiled:
            results[name] = COMPONENTS[name].score(ctx, options)
        components = {name: r.score for name, r in results.items()}

        gate = self._fired_gate(parsed, answer, item)
        if gate is not None:
            when, value = gate
            return ItemScore(value, components, f"gate {when} → {value:g}", None, len(parsed.calls), len(invalid))

        reward = spec.bias
        wrong = correct is False
        applicable_weight = 0.0
        weighted = 0.0
        for name, weight, scale, _options in self._compiled:
            score = components[name]
            if score is None or weight == 0:
                continue
            if weight > 0:
                applicable_weight += weight
            weighted += weight * score * (scale if wrong else 1.0)
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


def _error_score(kind: str, message: str, param: str | None) -> ItemScore:
    return ItemScore(None, {}, message, ItemError(kind, message, param))


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
    """Engines built once per (spec, toolset, parser) and reused, least recently used evicted.

    Building an engine compiles the spec's options and the answer judge, and the engine keeps
    the judge's and the tool executions' caches, so the service's workers and the client's
    local backend both keep engines across batches. Safe to share between threads.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._engines: OrderedDict[tuple[str, str, str], ScoringEngine] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        spec: RewardSpec | Mapping[str, Any],
        *,
        spec_hash: str | None = None,
        toolset: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        parser: str | None = None,
    ) -> ScoringEngine:
        """The engine for this spec; `spec_hash` (when known) skips validating a cached spec."""
        if spec_hash is None:
            spec = spec if isinstance(spec, RewardSpec) else RewardSpec.from_dict(dict(spec))
            spec_hash = spec.hash
        key = (spec_hash, tools_key(tools) or f"name:{toolset or ''}", parser or "auto")
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
        built = spec if isinstance(spec, RewardSpec) else RewardSpec.from_dict(dict(spec))
        engine = ScoringEngine(built, resolve_toolset(toolset, tools), parser)
        with self._lock:
            self._engines[key] = engine
            while len(self._engines) > self._size:
                self._engines.popitem(last=False)
        return engine

    def clear(self) -> None:
        with self._lock:
            self._engines.clear()


# ---------------------------------------------------------------------------- input
def item_from_dict(data: Mapping[str, Any]) -> ScoringItem:
    """Read one wire/JSONL item (the shape of `protocol.ScoreItem`). Unknown fields are ignored.

    Raises ScoringConfigError naming the field when the item itself is malformed (a reference
    that is not a trace, a completion that is neither text nor messages); a malformed
    *completion content* is not an error here, it is scored.
    """
    if not isinstance(data, Mapping):
        raise ScoringConfigError("an item must be a JSON object", param=None)
    completion = data.get("completion")
    if isinstance(completion, list):
        for i, message in enumerate(completion):
            if not isinstance(message, dict):
                raise ScoringConfigError("each message must be an object", param=f"completion[{i}]")
    elif not isinstance(completion, str):
        raise ScoringConfigError("'completion' must be a string or a list of messages", param="completion")

    reference = _reference_from(data)
    ground_truth = _ground_truth_from(data.get("ground_truth"), reference)

    finished = data.get("finished")
    if finished is not None and not isinstance(finished, bool):
        raise ScoringConfigError("'finished' must be true, false or null", param="finished")
    return ScoringItem(completion, ground_truth, reference, finished)


def _ground_truth_from(value: Any, reference: ReferenceTrace) -> tuple[str, ...]:
    if value is None:
        return (strip_boxed(reference.answer),) if reference.answer else ()
    if isinstance(value, str):
        return (strip_boxed(value),)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list):
        out = []
        for i, entry in enumerate(value):
            if isinstance(entry, bool) or not isinstance(entry, (str, int, float)):
                raise ScoringConfigError(
                    "each acceptable answer must be a string or number", param=f"ground_truth[{i}]"
                )
            out.append(strip_boxed(str(entry)))
        return tuple(out)
    raise ScoringConfigError("'ground_truth' must be a string or a list of strings", param="ground_truth")


def _reference_from(data: Mapping[str, Any]) -> ReferenceTrace:
    raw = data.get("reference")
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ScoringConfigError("'reference' must be an object with 'calls' and 'answer'", param="reference")
        calls_raw = raw.get("calls", [])
        if not isinstance(calls_raw, list):
            raise ScoringConfigError("'reference.calls' must be a list", param="reference.calls")
        calls = []
        for i, call in enumerate(calls_raw):
            if not isinstance(call, Mapping):
                raise ScoringConfigError("each reference call must be an object", param=f"reference.calls[{i}]")
            name = call.get("name")
            if not isinstance(name, str) or not name:
                raise ScoringConfigError(
                    "a reference call needs a non-empty 'name'", param=f"reference.calls[{i}].name"
                )
            arguments = call.get("arguments", {})
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise ScoringConfigError("'arguments' must be an object", param=f"reference.calls[{i}].arguments")
            calls.append(ReferenceCall(name, arguments, call.get("result")))
        answer = raw.get("answer")
        if answer is not None and not isinstance(answer, (str, int, float)):
            raise ScoringConfigError("'reference.answer' must be a string", param="reference.answer")
        possible = raw.get("possible_answers", False)
        if not isinstance(possible, bool):
            raise ScoringConfigError(
                "'reference.possible_answers' must be a boolean", param="reference.possible_answers"
            )
        return ReferenceTrace(tuple(calls), None if answer is None else str(answer), False, possible)
    names = data.get("teacher_tools")
    if names is None:
        return ReferenceTrace((), None, True, False)
    if not isinstance(names, list):
        raise ScoringConfigError("'teacher_tools' must be a list of tool names", param="teacher_tools")
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ScoringConfigError("each teacher tool must be a name (string)", param=f"teacher_tools[{i}]")
    return ReferenceTrace(tuple(ReferenceCall(n) for n in names), None, True, False)


# ---------------------------------------------------------------------------- aggregates
def batch_stats(results: Sequence[ItemScore]) -> dict[str, Any]:
    """Batch aggregates (the keys of `protocol.BatchStats`); errored items are left out of means."""
    scored = [r for r in results if r.error is None]
    rewards = [r.reward for r in scored if r.reward is not None]
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    names: list[str] = []
    for r in scored:
        for name, value in r.components.items():
            if name not in counts:
                counts[name] = 0
                sums[name] = 0.0
                names.append(name)
            if value is not None:
                sums[name] += value
                counts[name] += 1
    total_calls = sum(r.n_calls for r in scored)
    return {
        "n_items": len(results),
        "n_errors": len(results) - len(scored),
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "component_means": {n: (sums[n] / counts[n] if counts[n] else None) for n in names},
        "tool_call_rate": (sum(1 for r in scored if r.n_calls) / len(scored)) if scored else None,
        "invalid_tool_rate": (sum(r.n_invalid_tools for r in scored) / total_calls) if total_calls else None,
    }
