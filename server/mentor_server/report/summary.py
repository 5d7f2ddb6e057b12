"""One pass over score records into what the dashboard draws: per run, per step, and a sample.

The records hold each item as it was sent (the rollout, its teacher trace), its reward,
components, reason and error, but not the tool calls the engine read: those are read again
here with the reward's own parser (`parse_completion`, with the preset's parser choice), so
the dashboard counts the calls the reward counted. A called name is *invented* when the
preset's toolset does not know it (the engine's `invalid_tool_names`); for records scored with
an inline spec, or a preset whose toolset this process does not know, that cannot be known
and the rate is left out (None), never guessed. A request that overrode the preset's toolset
is not visible in its records: pass `toolset=` to name the one the run really used.

Means follow the service's batch aggregates (`mentor_client.results.batch_stats`): items with
an error are left out of reward and component means (and counted as errors), a component's
mean leaves out its None values, the tool-call rate is the share of scored items that called a
tool, the invalid-tool rate the share of calls naming no known tool.

Memory is one row at a time plus, per step, its rewards (for quantiles) and a bounded sample
of rollouts, so a file of any length can be summarised.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..scoring import ScoringConfigError, get_preset
from ..scoring.components import invalid_tool_names
from ..scoring.parsing import named_calls, parse_completion
from ..toolsets import Toolset, get_toolset

Row = Mapping[str, Any]

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
"""The reward quantiles drawn per step (the bands of the distribution chart)."""

HISTOGRAM_BINS = 20
TOP_NAMES = 20
"""How many invented tool names, and tool names in the usage comparison, the page lists."""

COMPLETION_CHARS = 4000
"""A sampled rollout's text is cut to this many characters (the page says so where it cuts)."""

SAMPLES_PER_RUN = 60
SAMPLES_TOTAL = 600


@dataclass(frozen=True, slots=True)
class ReadingRule:
    """How a record's rollout is read: the parser its reward used, and the toolset it checked."""

    parser: str
    toolset: Toolset | None


class _Rules:
    """`ReadingRule` per preset name, resolved once (a preset unknown here reads as `auto`)."""

    def __init__(self, toolset: str | None) -> None:
        self._override = get_toolset(toolset) if toolset is not None else None
        self._rules: dict[str | None, ReadingRule] = {}

    def for_preset(self, preset: str | None) -> ReadingRule:
        rule = self._rules.get(preset)
        if rule is None:
            parser, toolset = "auto", self._override
            if preset is not None:
                try:
                    spec = get_preset(preset)
                except ScoringConfigError:
                    spec = None
                if spec is not None:
                    parser = spec.parser or "auto"
                    if toolset is None and spec.toolset is not None:
                        try:
                            toolset = get_toolset(spec.toolset)
                        except ScoringConfigError:
                            toolset = None
            rule = self._rules[preset] = ReadingRule(parser, toolset)
        return rule


# ---------------------------------------------------------------------------- per step
@dataclass(slots=True)
class _Step:
    n: int = 0
    errors: int = 0
    rewards: list[float] = field(default_factory=list)
    comp_sum: dict[str, float] = field(default_factory=dict)
    comp_n: dict[str, int] = field(default_factory=dict)
    read: int = 0  # scored items whose rollout was read again (the tool rates' base)
    with_calls: int = 0
    calls: int = 0
    # Calls and invalid calls among the items whose toolset is known (the invalid-tool rate's base).
    checked_calls: int = 0
    invalid: int = 0


@dataclass(slots=True)
class _Run:
    run_id: str | None
    steps: dict[int | None, _Step] = field(default_factory=dict)
    presets: Counter[str] = field(default_factory=Counter)
    spec_hashes: Counter[str] = field(default_factory=Counter)
    components: dict[str, None] = field(default_factory=dict)  # ordered set
    invented: Counter[str] = field(default_factory=Counter)
    student_tools: Counter[str] = field(default_factory=Counter)
    teacher_tools: Counter[str] = field(default_factory=Counter)
    scored: int = 0
    checked: int = 0  # scored items whose toolset was known
    with_reference: int = 0
    unread: int = 0  # scored items whose rollout could not be read again (left out of the tool facts)
    error_types: Counter[str] = field(default_factory=Counter)
    sampler: _Sampler | None = None


# ---------------------------------------------------------------------------- reading one record
def _teacher_names(item: Mapping[str, Any]) -> list[str] | None:
    """The teacher's tool names from either reference shape, or None when the item has none."""
    reference = item.get("reference")
    if isinstance(reference, dict):
        calls = reference.get("calls")
        if isinstance(calls, list):
            return [c["name"] for c in calls if isinstance(c, dict) and isinstance(c.get("name"), str)]
    names = item.get("teacher_tools")
    if isinstance(names, list):
        return [n for n in names if isinstance(n, str)]
    return None


@dataclass(frozen=True, slots=True)
class _Read:
    """What one record's rollout shows: its calls (name, arguments, error) and invented names."""

    calls: list[dict[str, Any]]
    n_calls: int
    invented: list[str] | None  # None: the toolset is unknown


def _read_rollout(item: Any, rule: ReadingRule) -> _Read | None:
    if not isinstance(item, Mapping):
        return None
    completion = item.get("completion")
    if not isinstance(completion, str | list):
        return None
    try:
        parsed = parse_completion(completion, parser=rule.parser, eos_token=None, finished=None)
    except (ScoringConfigError, RecursionError, TypeError, ValueError, AttributeError):
        # The reward reported such an item as its error; the dashboard shows that error instead.
        return None
    named = named_calls(parsed)
    invented = list(invalid_tool_names(named, rule.toolset)) if rule.toolset is not None else None
    calls = [{"name": c.name, "arguments": c.arguments, "error": c.error} for c in parsed.calls]
    return _Read(calls, len(parsed.calls), invented)


# ---------------------------------------------------------------------------- sampling
class _Sampler:
    """A bounded, reproducible sample of one run's rollouts: uniform at random, plus the lowest
    and highest rewards, errors and rollouts that invented a tool (the ones worth reading)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self._random = random.Random(seed)
        self._uniform: list[dict[str, Any]] = []
        self._seen = 0
        self._special = max(2, size // 8)
        self._low: list[tuple[float, int, dict[str, Any]]] = []
        self._high: list[tuple[float, int, dict[str, Any]]] = []
        self._errors: list[dict[str, Any]] = []
        self._invented: list[dict[str, Any]] = []

    def offer(self, seq: int, row: Row, read: _Read | None) -> None:
        uniform_size = max(1, self.size - 4 * self._special)
        reward = row.get("reward")
        if row.get("error") is not None and len(self._errors) < self._special:
            self._errors.append(_sample(seq, row, read))
        elif read is not None and read.invented and len(self._invented) < self._special:
            self._invented.append(_sample(seq, row, read))
        if isinstance(reward, int | float) and math.isfinite(reward):
            self._extreme(self._low, -reward, seq, row, read)
            self._extreme(self._high, reward, seq, row, read)
        # Reservoir sampling (Algorithm R): every record has the same chance, in one pass.
        self._seen += 1
        if len(self._uniform) < uniform_size:
            self._uniform.append(_sample(seq, row, read))
        else:
            slot = self._random.randrange(self._seen)
            if slot < uniform_size:
                self._uniform[slot] = _sample(seq, row, read)

    def _extreme(
        self, heap: list[tuple[float, int, dict[str, Any]]], key: float, seq: int, row: Row, read: _Read | None
    ) -> None:
        # A min-heap of the `_special` largest keys; the sample is built only when it enters.
        if len(heap) < self._special:
            heapq.heappush(heap, (key, -seq, _sample(seq, row, read)))
        elif key > heap[0][0]:
            heapq.heapreplace(heap, (key, -seq, _sample(seq, row, read)))

    def samples(self) -> list[dict[str, Any]]:
        chosen: dict[int, dict[str, Any]] = {}
        for group in (
            self._errors,
            self._invented,
            [s for _, _, s in self._low],
            [s for _, _, s in self._high],
            self._uniform,
        ):
            for sample in group:
                chosen.setdefault(sample["seq"], sample)
        return sorted(chosen.values(), key=lambda s: s["seq"])


def _clip(text: str) -> tuple[str, bool]:
    return (text[:COMPLETION_CHARS], True) if len(text) > COMPLETION_CHARS else (text, False)


def _sample(seq: int, row: Row, read: _Read | None) -> dict[str, Any]:
    item = row.get("item")
    item = item if isinstance(item, Mapping) else {"value": item}
    completion = item.get("completion")
    clipped = False
    if isinstance(completion, str):
        completion, clipped = _clip(completion)
    elif isinstance(completion, list):
        messages = []
        for message in completion[:50]:
            if isinstance(message, Mapping):
                message = dict(message)
                if isinstance(message.get("content"), str):
                    message["content"], cut = _clip(message["content"])
                    clipped = clipped or cut
            messages.append(message)
        clipped = clipped or len(completion) > 50
        completion = messages
    ground_truth = item.get("ground_truth")
    return {
        "seq": seq,
        "run_id": row.get("run_id"),
        "step": row.get("step"),
        "preset": row.get("preset"),
        "spec_hash": row.get("spec_hash"),
        "reward": row.get("reward"),
        "components": row.get("components") or {},
        "reason": row.get("reason") or "",
        "error": row.get("error"),
        "completion": completion,
        "completion_clipped": clipped,
        "ground_truth": ground_truth,
        "reference": item.get("reference"),
        "teacher_tools": item.get("teacher_tools"),
        "student_calls": None if read is None else read.calls[:50],
        "invented": None if read is None else read.invented,
    }


# ---------------------------------------------------------------------------- the pass
def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class RecordSummary:
    """The summary being built: `add` records in the order written, `result()` at any time.

    Adding is incremental: a summary kept between two looks at a growing record (the `/ui`
    route keeps one) is fed only the records written since, and its result is the same as
    that of one pass over them all.

    `toolset` names the toolset every record is checked against for invented tools, instead of
    each preset's own (ScoringConfigError when it is not registered).
    """

    def __init__(self, *, toolset: str | None = None, seed: int = 0) -> None:
        self.toolset = toolset
        self.seed = seed
        self.n_records = 0
        self._rules = _Rules(toolset)
        self._runs: dict[str | None, _Run] = {}

    def add(self, rows: Iterable[Row]) -> RecordSummary:
        for row in rows:
            seq = self.n_records
            self.n_records += 1
            run_id = row.get("run_id")
            run_id = run_id if isinstance(run_id, str) else None
            run = self._runs.get(run_id)
            if run is None:
                run = self._runs[run_id] = _Run(run_id)
            step_value = row.get("step")
            step_key = step_value if isinstance(step_value, int) and not isinstance(step_value, bool) else None
            step = run.steps.get(step_key)
            if step is None:
                step = run.steps[step_key] = _Step()
            preset = row.get("preset") if isinstance(row.get("preset"), str) else None
            run.presets[preset or "(inline spec)"] += 1
            run.spec_hashes[str(row.get("spec_hash") or "")] += 1
            step.n += 1
            _add(run, step, row, self._rules.for_preset(preset), seq, self.seed)
        return self

    def result(self) -> dict[str, Any]:
        """The dashboard's data, a JSON-ready dict (see `summarize_records`)."""
        return _finish(self._runs, self.n_records, self.toolset)


def summarize_records(rows: Iterable[Row], *, toolset: str | None = None, seed: int = 0) -> dict[str, Any]:
    """The dashboard's data (a JSON-ready dict) from score records, in one pass (`RecordSummary`)."""
    return RecordSummary(toolset=toolset, seed=seed).add(rows).result()


def _add(run: _Run, step: _Step, row: Row, rule: ReadingRule, seq: int, seed: int) -> None:
    item = row.get("item")
    read = _read_rollout(item, rule)
    reward = _number(row.get("reward"))
    error = row.get("error")
    if run.sampler is None:
        # Seeded by the run id (crc32: the same in every process), so a report is reproducible.
        run.sampler = _Sampler(SAMPLES_PER_RUN, seed=seed ^ zlib.crc32(str(run.run_id).encode("utf-8", "replace")))
    run.sampler.offer(seq, row, read)
    if error is not None or reward is None:
        step.errors += 1
        kind = error.get("type") if isinstance(error, Mapping) else None
        run.error_types[str(kind or "error")] += 1
        return
    run.scored += 1
    step.rewards.append(reward)
    components = row.get("components")
    if isinstance(components, Mapping):
        for name, value in components.items():
            run.components.setdefault(name, None)
            step.comp_n.setdefault(name, 0)
            step.comp_sum.setdefault(name, 0.0)
            number = _number(value)
            if number is not None:
                step.comp_sum[name] += number
                step.comp_n[name] += 1
    if isinstance(item, Mapping):
        teacher = _teacher_names(item)
        if teacher is not None:
            run.with_reference += 1
            run.teacher_tools.update(teacher)
    if read is None:
        run.unread += 1
        return
    step.read += 1
    step.calls += read.n_calls
    step.with_calls += 1 if read.n_calls else 0
    run.student_tools.update(c["name"] for c in read.calls if isinstance(c["name"], str))
    if read.invented is not None:
        run.checked += 1
        step.checked_calls += read.n_calls
        step.invalid += len(read.invented)
        run.invented.update(read.invented)


def _finish(runs: dict[str | None, _Run], total: int, toolset: str | None) -> dict[str, Any]:
    out_runs = []
    samples: list[dict[str, Any]] = []
    per_run = max(5, SAMPLES_TOTAL // max(1, len(runs)))
    for run in runs.values():
        out_runs.append(_run_summary(run))
        if run.sampler is not None:
            samples.extend(run.sampler.samples()[:per_run])
    return {
        "n_records": total,
        "toolset_override": toolset,
        "completion_chars": COMPLETION_CHARS,
        "runs": out_runs,
        "samples": samples,
    }


def _run_summary(run: _Run) -> dict[str, Any]:
    stepped = sorted(k for k in run.steps if k is not None)
    all_rewards = sorted(r for s in run.steps.values() for r in s.rewards)
    low, high = (all_rewards[0], all_rewards[-1]) if all_rewards else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    width = (high - low) / HISTOGRAM_BINS
    edges = [low + i * width for i in range(HISTOGRAM_BINS + 1)]

    def histogram(rewards: list[float]) -> list[int]:
        counts = [0] * HISTOGRAM_BINS
        for reward in rewards:
            counts[min(HISTOGRAM_BINS - 1, int((reward - low) / width))] += 1
        return counts

    series: dict[str, list[Any]] = {
        "n": [],
        "errors": [],
        "reward_mean": [],
        "tool_call_rate": [],
        "calls_per_rollout": [],
        "invalid_tool_rate": [],
        "histogram": [],
    }
    quantiles: dict[str, list[float | None]] = {f"p{round(q * 100)}": [] for q in QUANTILES}
    components: dict[str, list[float | None]] = {name: [] for name in run.components}
    for key in stepped:
        step = run.steps[key]
        scored = len(step.rewards)
        ordered = sorted(step.rewards)
        series["n"].append(step.n)
        series["errors"].append(step.errors)
        series["reward_mean"].append(sum(ordered) / scored if scored else None)
        series["tool_call_rate"].append(step.with_calls / step.read if step.read else None)
        series["calls_per_rollout"].append(step.calls / step.read if step.read else None)
        series["invalid_tool_rate"].append(step.invalid / step.checked_calls if step.checked_calls else None)
        series["histogram"].append(histogram(ordered))
        for q in QUANTILES:
            quantiles[f"p{round(q * 100)}"].append(_quantile(ordered, q) if ordered else None)
        for name in run.components:
            n = step.comp_n.get(name, 0)
            components[name].append(step.comp_sum[name] / n if n else None)
    teacher_refs = max(1, run.with_reference)
    usage_names = [name for name, _ in (run.student_tools + run.teacher_tools).most_common(TOP_NAMES)]
    n_read = sum(s.read for s in run.steps.values())
    calls_total = sum(s.calls for s in run.steps.values())
    checked_calls = sum(s.checked_calls for s in run.steps.values())
    invalid_total = sum(s.invalid for s in run.steps.values())
    return {
        "run_id": run.run_id,
        "n_records": sum(s.n for s in run.steps.values()),
        "n_scored": run.scored,
        "n_errors": sum(s.errors for s in run.steps.values()),
        "n_unstepped": run.steps[None].n if None in run.steps else 0,
        "error_types": dict(run.error_types.most_common()),
        "presets": dict(run.presets.most_common()),
        "spec_hashes": dict(run.spec_hashes.most_common()),
        "reward_mean": sum(all_rewards) / len(all_rewards) if all_rewards else None,
        "tool_call_rate": sum(s.with_calls for s in run.steps.values()) / n_read if n_read else None,
        "invalid_tool_rate": invalid_total / checked_calls if checked_calls else None,
        "n_calls": calls_total,
        "n_checked": run.checked,
        "n_unread": run.unread,
        "steps": stepped,
        "series": series,
        "quantiles": quantiles,
        "components": components,
        "histogram_edges": edges,
        "histogram_all": histogram(all_rewards),
        "invented_tools": run.invented.most_common(TOP_NAMES),
        "tool_usage": {
            "names": usage_names,
            # Calls per scored rollout (student) and per reference trace (teacher): the same scale.
            "student": [run.student_tools[n] / max(1, n_read) for n in usage_names],
            "teacher": [run.teacher_tools[n] / teacher_refs for n in usage_names],
            "n_references": run.with_reference,
        },
    }
