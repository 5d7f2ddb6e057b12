"""The retrieval family: a fixed fictional world, teacher traces with real searches, QA-judged scores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mentor_server.scoring import ScoringEngine, resolve_engine_config
from mentor_server.toolsets import list_toolsets, load_toolsets_file
from mentor_server.toolsets.search_index import SearchIndex, build_index
from mentor_trainer import families_retrieval as fr
from mentor_trainer.benchmark import split_groups
from mentor_trainer.families import FAMILIES


@pytest.fixture
def enabled() -> Iterator[None]:
    fr.enable()
    yield
    fr.disable()


@pytest.fixture(scope="module")
def splits() -> Iterator[dict[str, list[dict[str, Any]]]]:
    rows = fr.retrieval_splits(seed=3, train=60, test=24, ood=24)
    yield rows
    fr.disable()


def test_the_world_is_fixed_and_its_names_are_unique() -> None:
    world = fr.world()
    titles = [d["title"] for d in world.documents]
    assert len(titles) == len(set(titles)) == len(world.towns) + len(world.people) + len(world.workshops)
    assert len({d["id"] for d in world.documents}) == len(titles)
    for person in world.people.values():
        assert person.born_in in world.towns
    for works in world.workshops.values():
        assert works.seat in world.towns and works.founder in world.people
    fr.world.cache_clear()
    assert fr.world() == world  # rebuilt from the seed alone


def test_the_splits_are_opt_in() -> None:
    default = split_groups()
    assert not {"ood_retrieval", "ood_retrieval_2hop"} & set(default)
    fr.enable()
    fr.enable()  # idempotent: no family registered twice
    try:
        groups = split_groups()
        assert groups == {**default, "ood_retrieval": fr.ONE_HOP, "ood_retrieval_2hop": fr.MULTI_HOP}
        assert (len(FAMILIES[fr.ONE_HOP]), len(FAMILIES[fr.MULTI_HOP])) == (6, 4)
        assert {f.toolset for f in FAMILIES[fr.ONE_HOP] + FAMILIES[fr.MULTI_HOP]} == {fr.RETRIEVAL}
    finally:
        fr.disable()
    assert split_groups() == default
    assert fr.RETRIEVAL not in {t.name for t in list_toolsets()}


def test_rows_hold_real_searches_and_answers_read_from_them(splits: dict[str, list[dict[str, Any]]]) -> None:
    assert {name: len(rows) for name, rows in splits.items()} == {
        "retrieval_train": 60,
        "retrieval_test": 24,
        "ood_retrieval_2hop": 24,
    }
    train_questions = {r["prompt"][-1]["content"] for r in splits["retrieval_train"]}
    assert not train_questions & {r["prompt"][-1]["content"] for r in splits["retrieval_test"]}
    for name, rows in splits.items():
        hops = 2 if name == "ood_retrieval_2hop" else 1
        for row in rows:
            assert fr.verify_retrieval_row(row) == [], row["id"]
            calls = row["reference"]["calls"]
            assert [c["name"] for c in calls] == ["search"] * hops, row["id"]
            assert row["toolset"] == fr.RETRIEVAL and row["teacher_tools"] == ["search"]
            assert row["messages"][-1]["content"].endswith(f"\\boxed{{{row['ground_truth']}}}.")
    assert len({r["family"] for r in splits["ood_retrieval_2hop"]}) == 4
    assert len({r["family"] for r in splits["retrieval_train"]}) == 6


def test_a_tampered_row_fails_verification(splits: dict[str, list[dict[str, Any]]]) -> None:
    row = json.loads(json.dumps(splits["ood_retrieval_2hop"][0]))
    row["reference"]["calls"][1]["result"] = row["reference"]["calls"][0]["result"]
    row["reference"]["answer"] = row["ground_truth"] = "Nowhere"
    problems = fr.verify_retrieval_row(row)
    assert any("recorded result" in p for p in problems)
    assert any("not in the last search" in p for p in problems)


def _item(row: dict[str, Any], final: str | None = None) -> dict[str, Any]:
    completion = row["messages"][len(row["prompt"]) :]
    if final is not None:
        completion = [*completion[:-1], {"role": "assistant", "content": final}]
    return {"completion": completion, "ground_truth": row["ground_truth"], "reference": row["reference"]}


def test_the_engine_scores_teacher_traces_with_the_qa_judge(splits: dict[str, list[dict[str, Any]]]) -> None:
    engine = ScoringEngine.from_config(resolve_engine_config(spec=fr.RETRIEVAL_SPEC))
    rows = splits["retrieval_test"][:6] + splits["ood_retrieval_2hop"][:6]
    for row, score in zip(rows, engine.score_dicts([_item(r) for r in rows]), strict=True):
        assert score.error is None, score.reason
        assert score.components["outcome"] == 1.0 and score.components["no_hallucination"] == 1.0, row["id"]
        assert score.reward == pytest.approx(1.1)
    row = rows[-1]
    wrong, article, unboxed = engine.score_dicts(
        [
            _item(row, "The answer is \\boxed{Atlantis}."),
            _item(row, f"The answer is \\boxed{{the {row['ground_truth']}}}."),  # SQuAD drops articles
            _item(row, f"It is {row['ground_truth']}"),  # boxed_or_final: a final line without a box
        ]
    )
    assert wrong.components["outcome"] == 0.0 and wrong.reward is not None and wrong.reward < 0.8
    assert article.components["outcome"] == 1.0
    assert unboxed.components["outcome"] is not None


def test_the_exported_corpus_serves_the_same_results(tmp_path: Path, enabled: None) -> None:
    """The service can serve this family from `mentor-reward index build` of `write_corpus`."""
    count = fr.write_corpus(tmp_path / "world.jsonl")
    build_index(tmp_path / "world.jsonl", tmp_path / "index")
    on_disk = SearchIndex.open(tmp_path / "index")
    assert on_disk.documents == count == len(fr.world().documents)
    toolset = fr.retrieval_toolset()
    for title in [d["title"] for d in fr.world().documents[::97]]:
        expected = toolset.execute("search", {"query": title}).result
        assert [d.to_dict() for d in on_disk.search(title, 3)] == expected


def test_write_index_gives_a_service_the_same_tool(tmp_path: Path, enabled: None) -> None:
    """`write_index` is what the experiment's service and `make-data --retrieval` load."""
    toolsets_file = fr.write_index(tmp_path / "retrieval")
    (loaded,) = load_toolsets_file(toolsets_file)
    in_memory = fr.retrieval_toolset()
    assert loaded.name == fr.RETRIEVAL and loaded.schemas() == in_memory.schemas()
    for title in [d["title"] for d in fr.world().documents[5::131]]:
        query = {"query": f"{title} founded", "top_k": 3}
        assert loaded.execute("search", query).content == in_memory.execute("search", query).content
    manifest = (tmp_path / "retrieval" / "index" / "mentor_search.json").read_text()
    assert fr.write_index(tmp_path / "retrieval") == toolsets_file  # a rerun rebuilds the same index
    assert (
        json.loads((tmp_path / "retrieval" / "index" / "mentor_search.json").read_text())["corpus_sha256"]
        == (json.loads(manifest)["corpus_sha256"])
    )
    (tmp_path / "other" / "index").mkdir(parents=True)
    (tmp_path / "other" / "index" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a search index"):
        fr.write_index(tmp_path / "other")
    assert (tmp_path / "other" / "index" / "notes.txt").read_text() == "mine"
