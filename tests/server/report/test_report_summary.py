"""The dashboard's summary and page: numbers checked by hand on small record sets."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from typing import Any

import pytest

from mentor_server.report import RecordSummary, build_dashboard, summarize_records
from mentor_server.report.page import json_safe
from mentor_server.report.summary import SAMPLES_PER_RUN, SAMPLES_TOTAL
from mentor_server.scoring import ScoringConfigError


def _call(name: str, a: int = 1) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {{"a": {a}, "b": 2}}}}</tool_call>'


def _row(
    completion: Any,
    *,
    reward: float | None = 1.0,
    step: int | None = 0,
    run: str | None = "r1",
    preset: str | None = "mentor",
    components: dict[str, float | None] | None = None,
    error: dict[str, Any] | None = None,
    teacher: list[str] | None = None,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"completion": completion, "ground_truth": "3"}
    if teacher is not None:
        item["teacher_tools"] = teacher
    if reference is not None:
        item["reference"] = reference
    return {
        "run_id": run,
        "step": step,
        "spec_hash": "h1",
        "preset": preset,
        "item": item,
        "reward": reward,
        "components": components if components is not None else {"outcome": 1.0},
        "reason": "why",
        "error": error,
        "created_at": 0.0,
    }


def _page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert match
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_step_series_follow_the_services_batch_aggregates() -> None:
    rows = [
        # step 0: two scored items and one error (left out of every mean, counted as an error)
        _row(_call("add") + _call("sqrt_tool"), reward=1.0, components={"outcome": 1.0, "tool_names": None}),
        _row("no tools here", reward=0.0, components={"outcome": 0.0, "tool_names": 0.5}),
        _row(_call("add"), reward=None, components={}, error={"type": "timeout", "message": "slow", "param": None}),
        # step 2: one item, two invented calls of three
        _row(_call("foo") + _call("foo") + _call("add"), step=2, reward=0.5, components={"outcome": 0.5}),
    ]
    (run,) = summarize_records(rows)["runs"]
    assert run["steps"] == [0, 2]
    series = run["series"]
    assert series["n"] == [3, 1]
    assert series["errors"] == [1, 0]
    assert series["reward_mean"] == [0.5, 0.5]
    assert run["components"]["outcome"] == [0.5, 0.5]
    assert run["components"]["tool_names"] == [0.5, None]  # None values left out; none at all: None
    assert series["tool_call_rate"] == [0.5, 1.0]  # one of the two scored items at step 0 called a tool
    assert series["calls_per_rollout"] == [1.0, 3.0]
    assert series["invalid_tool_rate"] == [0.5, pytest.approx(2 / 3)]  # calculator knows add, not the others
    assert run["invented_tools"] == [["foo", 2], ["sqrt_tool", 1]] or run["invented_tools"] == [
        ("foo", 2),
        ("sqrt_tool", 1),
    ]
    assert run["n_errors"] == 1 and run["error_types"] == {"timeout": 1}
    assert run["tool_call_rate"] == pytest.approx(2 / 3)
    assert run["invalid_tool_rate"] == pytest.approx(3 / 5)
    assert run["reward_mean"] == pytest.approx(0.5)


def test_quantiles_and_histogram_per_step() -> None:
    rows = [_row("x", reward=float(r), step=1) for r in range(11)]  # rewards 0..10 at one step
    (run,) = summarize_records(rows)["runs"]
    assert run["quantiles"]["p50"] == [5.0]
    assert run["quantiles"]["p10"] == [1.0]
    assert run["quantiles"]["p75"] == [7.5]
    assert sum(run["series"]["histogram"][0]) == 11
    assert run["histogram_edges"][0] == 0.0 and run["histogram_edges"][-1] == pytest.approx(10.0)
    # Twenty bins of 0.5: 9 is in [9, 9.5), 10 (the maximum) in the last bin, [9.5, 10].
    assert run["series"]["histogram"][0][-2:] == [1, 1] and run["series"]["histogram"][0][:2] == [1, 0]


def test_runs_are_kept_apart_and_records_without_a_step_are_counted_outside_the_series() -> None:
    rows = [_row("x", run="a", step=0), _row("x", run="b", step=5), _row("x", run="b", step=None), _row("x", run=None)]
    runs = {r["run_id"]: r for r in summarize_records(rows)["runs"]}
    assert set(runs) == {"a", "b", None}
    assert runs["b"]["steps"] == [5] and runs["b"]["n_records"] == 2 and runs["b"]["n_unstepped"] == 1
    assert runs[None]["n_records"] == 1


def test_teacher_and_student_usage_are_on_the_same_scale() -> None:
    reference = {"calls": [{"name": "add", "arguments": {"a": 1, "b": 2}, "result": 3}], "answer": "3"}
    rows = [
        _row(_call("add") + _call("add"), reference=reference),
        _row(_call("multiply"), teacher=["add", "multiply"]),
    ]
    (run,) = summarize_records(rows)["runs"]
    usage = run["tool_usage"]
    shares = dict(zip(usage["names"], zip(usage["teacher"], usage["student"], strict=True), strict=True))
    assert shares["add"] == (1.0, 1.0)  # teacher: 2 calls over 2 traces; student: 2 calls over 2 rollouts
    assert shares["multiply"] == (0.5, 0.5)
    assert usage["n_references"] == 2


def test_invented_names_need_a_known_toolset() -> None:
    rows = [_row(_call("foo"), preset=None), _row(_call("foo"), preset="a-preset-this-process-does-not-know")]
    (run,) = summarize_records(rows)["runs"]
    assert run["n_checked"] == 0
    assert run["invalid_tool_rate"] is None and run["series"]["invalid_tool_rate"] == [None]
    assert run["invented_tools"] == []
    # Naming the toolset the run used makes them known.
    (named,) = summarize_records(rows, toolset="calculator")["runs"]
    assert named["invalid_tool_rate"] == 1.0 and named["n_checked"] == 2
    with pytest.raises(ScoringConfigError):
        summarize_records(rows, toolset="no-such-toolset")


def test_message_list_rollouts_are_read_with_the_rewards_parser() -> None:
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add", "arguments": '{"a": 1}'}}]},
        {"role": "tool", "content": "1"},
        {"role": "assistant", "content": "The answer is 1."},
    ]
    (run,) = summarize_records([_row(messages)])["runs"]
    assert run["n_calls"] == 1 and run["invalid_tool_rate"] == 0.0


def test_items_the_reward_could_not_read_are_errors_not_crashes() -> None:
    rows = [
        {"run_id": "r", "step": 0, "item": "not an object", "reward": None, "components": {}, "error": {"type": "x"}},
        {"run_id": "r", "step": 0, "item": {"completion": 42}, "reward": 0.5, "components": None, "error": None},
        {"run_id": "r", "step": "seven", "item": None, "reward": float("nan"), "error": None},
    ]
    summary = summarize_records(rows)
    (run,) = summary["runs"]
    assert run["n_records"] == 3 and run["n_errors"] == 2 and run["n_scored"] == 1
    # The scored one has no rollout to read: said, and left out of the tool rates.
    assert run["n_unread"] == 1 and run["tool_call_rate"] is None
    json.dumps(json_safe(summary), allow_nan=False)


def test_the_sample_is_bounded_reproducible_and_keeps_errors_and_extremes() -> None:
    rows = [_row(_call("add", i), reward=i / 1000, step=i // 100) for i in range(1000)]
    rows[500]["error"] = {"type": "timeout", "message": "slow", "param": None}
    rows[500]["reward"] = None
    samples = summarize_records(rows)["samples"]
    assert len(samples) <= SAMPLES_PER_RUN
    assert samples == summarize_records(rows)["samples"]
    rewards = [s["reward"] for s in samples]
    assert 0.0 in rewards and 0.999 in rewards
    assert any(s["error"] for s in samples)
    many_runs = [_row("x", run=f"run{i}") for i in range(200) for _ in range(10)]
    assert len(summarize_records(many_runs)["samples"]) <= max(SAMPLES_TOTAL, 5 * 200)


def test_a_summary_fed_in_parts_equals_one_pass() -> None:
    rows = [_row(_call("add", i) + _call("foo"), reward=(i % 7) / 7, step=i // 30, run=f"r{i % 3}") for i in range(300)]
    rows[40]["error"] = {"type": "timeout", "message": "slow", "param": None}
    summary = RecordSummary()
    summary.add(rows[:10])
    first = summary.result()
    summary.add(rows[10:200]).add(rows[200:])
    assert summary.result() == summarize_records(rows)
    assert first == summarize_records(rows[:10])


def test_long_completions_are_cut_and_say_so() -> None:
    (sample,) = summarize_records([_row("x" * 100_000)])["samples"]
    assert sample["completion_clipped"] is True and len(sample["completion"]) < 100_000


def test_page_keeps_rollout_markup_inert_and_allows_only_its_own_scripts() -> None:
    hostile = "</script><script>alert(1)</script><!-- \ud800 \u2028"
    page = build_dashboard([_row(hostile + _call("add"))], source="<b>src</b>")
    # The data block ends where the page ends it, and holds the text intact.
    assert page.count("</script>") == 3
    assert _page_data(page)["samples"][0]["completion"].startswith("</script><script>alert(1)")
    assert "<b>src</b>" not in page
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy
    content = html.unescape(policy.group(1))
    allowed = set(re.findall(r"'sha256-([^']+)'", content))
    for script in re.findall(r"<script>(.*?)</script>", page, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert digest in allowed
    assert len(allowed) == 3  # Chart.js, the page script, the style
    assert content.startswith("default-src 'none'; ") and "http" not in content


def test_json_safe_handles_what_json_parse_refuses() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    safe = json_safe({"nan": math.nan, "inf": [math.inf], 1: "key", "deep": deep, "other": {1, 2}})
    text = json.dumps(safe, allow_nan=False)
    assert '"nan": "nan"' in text and '"1": "key"' in text and "nested deeper" in text


def test_an_empty_record_set_is_a_page() -> None:
    page = build_dashboard([], source="nothing")
    assert _page_data(page) == {
        "n_records": 0,
        "toolset_override": None,
        "completion_chars": 4000,
        "runs": [],
        "samples": [],
    }
