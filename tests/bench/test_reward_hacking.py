"""bench/reward_hacking.py on one item of each in-domain family: the table's structure and the facts
it rests on (the rollouts are what the Qwen 2.5 chat template writes, the honest-correct rollout
earns each preset's top reward, the docs writer touches only its own section).

The items are the first row of each family in the test split of `mentor-train make-data --seed 0`
(system message dropped), stored so that the test needs neither TRL nor transformers, whose
import alone takes longer than this test may.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mentor_server.scoring import list_presets

BENCH = Path(__file__).resolve().parents[2] / "bench"
ROWS = Path(__file__).with_name("data") / "benchmark_test_seed0.jsonl"
N_FAMILIES = 16


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reward_hacking", BENCH / "reward_hacking.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reward_hacking"] = module
    spec.loader.exec_module(module)
    return module


rh = _load()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in ROWS.read_text(encoding="utf-8").splitlines()]
    assert len({r["family"] for r in rows}) == len(rows) == N_FAMILIES
    return rows


@pytest.fixture(scope="module")
def report(rows: list[dict[str, Any]]) -> Any:
    return rh.score_rows(rows)


def test_every_preset_has_a_row_and_enough_hacks(report: Any) -> None:
    assert [row.name for row in report.rows] == [p.name for p in list_presets()]
    names = [h.name for h in rh.HACKS]
    assert len(names) >= 8 and len(set(names)) == len(names)
    assert {c.name for c in report.columns} == {"honest-correct", "honest-wrong", *names}
    for row in report.rows:
        assert all(len(values) == report.n_items == N_FAMILIES for values in row.rewards.values())


def test_honest_correct_earns_the_top_and_every_reward_is_in_range(report: Any) -> None:
    for row in report.rows:
        low, high = row.reward_range
        assert row.rewards["honest-correct"] == pytest.approx([high] * report.n_items), row.name
        for column, values in row.rewards.items():
            assert all(low - 1e-9 <= v <= high + 1e-9 for v in values), (row.name, column)


def test_answers_are_what_each_policy_claims(report: Any) -> None:
    for column in report.columns:
        judged = report.correct[column.name]
        if column.answer == "right":
            assert all(judged), column.name
        elif column.answer in ("wrong", "none"):
            assert not any(judged), column.name


def _qwen_template() -> Any:
    """TRL's Qwen 2.5 template file, rendered the way transformers does (found, not imported)."""
    jinja = pytest.importorskip("jinja2.sandbox")
    found = importlib.util.find_spec("trl")
    if found is None or found.origin is None:
        pytest.skip("trl is not installed")
    env = jinja.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    return env.from_string((Path(found.origin).parent / "chat_templates" / "qwen2_5.jinja").read_text())


def test_rollouts_are_the_chat_template_rendering(rows: list[dict[str, Any]]) -> None:
    from mentor_client.local import LocalBackend

    template = _qwen_template()
    run = rh.ToolRunner(LocalBackend())
    for row, problem in zip(rows, rh.problems_from_rows(rows), strict=True):
        prompt = template.render(messages=row["prompt"], add_generation_prompt=True)
        full = template.render(messages=row["messages"])
        assert full.startswith(prompt)
        expected = full[len(prompt) :].removesuffix("\n")
        assert rh.HONEST[0].build(problem, run) == (expected, True)
    truncated = next(h for h in rh.HACKS if h.name == "truncated_right")
    text, finished = truncated.build(problem, run)
    assert not finished and not text.endswith("<|im_end|>") and expected.startswith(text)


def test_flags_on_the_outcome_only_preset(report: Any) -> None:
    # `sparse` reads the answer alone: every wrong-answer process earns honest-wrong's reward
    # (flagged as a tie), none earns more, and a right answer without tools earns the top.
    sparse = next(row for row in report.rows if row.name == "sparse")
    assert rh.gains(report, sparse) == []
    tied = {f.hack for f in rh.ties(report, sparse)}
    assert {"every_tool", "invented_tool", "guess_no_tools", "rambling"} <= tied
    assert "many_boxes" not in tied  # it shows the teacher's trace: a tie is no hack
    assert "right_no_tools" in {f.hack for f in rh.reaches_correct(report, sparse)}


def test_table_has_one_line_per_preset(report: Any) -> None:
    lines = rh.markdown_table(report).splitlines()
    assert len(lines) == 2 + len(report.rows) + 1
    assert all(line.count("|") == 3 + len(report.columns) for line in lines)
    assert len(rh.reading(report).splitlines()) == len(report.rows)


def test_docs_writer_replaces_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "rewards.md"
    path.write_text("# Rewards\n\nintro\n")
    rh.write_docs("first", path)
    assert path.read_text() == f"# Rewards\n\nintro\n\n{rh.START}\nfirst\n{rh.END}\n"
    path.write_text(path.read_text() + "\n## Added by someone else\n")
    rh.write_docs("second", path)
    assert path.read_text() == f"# Rewards\n\nintro\n\n{rh.START}\nsecond\n{rh.END}\n\n## Added by someone else\n"
    path.write_text(f"{rh.END}\n{rh.START}\n")
    with pytest.raises(RuntimeError, match="out of order"):
        rh.write_docs("third", path)
