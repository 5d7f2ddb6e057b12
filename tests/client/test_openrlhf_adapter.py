"""The OpenRLHF reward file: query minus prompt, labels as references, tensors out."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from client_fakes import FakeService

from mentor_client import ItemScoringError, RetryPolicy, RewardClient
from mentor_client.adapters import openrlhf_reward_func as orf
from mentor_client.adapters._common import EnvSettings


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeService:
    fake = FakeService()
    client = RewardClient("http://svc", retry=RetryPolicy(max_retries=0), transport=fake.transport())
    monkeypatch.setattr(orf, "_BACKENDS", {})
    monkeypatch.setattr(orf, "_COMPONENTS", {})
    monkeypatch.setattr(orf, "_backend", lambda settings: client)
    return fake


@pytest.mark.parametrize(
    ("query", "prompt", "completion"),
    [
        ("<|im_start|>user\nQ<|im_end|>\nc5<|im_end|>", "<|im_start|>user\nQ<|im_end|>\n", "c5<|im_end|>"),
        ("<s>PROMPT c1", "PROMPT ", "c1"),
        ("no prompt inside", "elsewhere", "no prompt inside"),
        ("just text", "", "just text"),
    ],
    ids=["prefix", "bos-in-front", "prompt-missing", "no-prompt"],
)
def test_completion_is_the_query_minus_its_prompt(query: str, prompt: str, completion: str) -> None:
    assert orf.completion_of(query, prompt) == completion


def test_rewards_scores_and_logs_as_tensors(service: FakeService) -> None:
    import torch

    prompts = ["P1 ", "P2 ", "P3 "]
    queries = [p + c for p, c in zip(prompts, ["c2", "c3", "c5"], strict=True)]
    labels = ["2", json.dumps({"ground_truth": "3", "teacher_tools": ["add"]}), "5"]
    out = orf.reward_func(queries, prompts, labels)
    assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].dtype == torch.float32
    assert out["rewards"].tolist() == [2.0, 3.0, 5.0]
    assert set(out["extra_logs"]) == {
        "outcome",
        "outcome/applicable",
        "tool_names",
        "tool_names/applicable",
        "item_error",
    }
    logs = {k: v.tolist() for k, v in out["extra_logs"].items()}
    # Not applicable is 0.0 with its flag 0.0 (OpenRLHF's plain .mean() cannot skip NaN), and the
    # component's mean over the samples it applies to is mean(c) / mean(c/applicable).
    assert logs["tool_names"] == pytest.approx([0.02, 0.0, 0.05])
    assert logs["tool_names/applicable"] == [1.0, 0.0, 1.0]
    assert logs["item_error"] == [0.0, 0.0, 0.0]
    assert all(math.isfinite(v) for values in logs.values() for v in values)
    (body,) = service.bodies()
    assert [i["completion"] for i in body["items"]] == ["c2", "c3", "c5"]
    assert body["items"][1]["teacher_tools"] == ["add"]
    assert all("finished" not in i for i in body["items"])  # the text keeps its EOS token


def test_scores_are_the_reward_on_the_unit_interval(service: FakeService) -> None:
    # The fake's preset ranges over [0, 1.1]; OpenRLHF's dynamic filtering compares scores with [0, 1].
    out = orf.reward_func(["c0", "c1"], [], ["0", "1"])
    assert out["rewards"].tolist() == [0.0, 1.0]
    assert out["scores"].tolist() == pytest.approx([0.0, 1.0 / 1.1])
    assert orf.unit_score(5.0, (0.0, 1.1)) == 1.0 and orf.unit_score(-3.0, (-3.0, 4.0)) == 0.0


def test_lists_when_torch_is_missing(service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    out = orf.reward_func(["P c0"], ["P "], ["4"])
    assert out["rewards"] == [0.0]
    assert out["extra_logs"]["outcome"] == [1.0]


def test_labels_with_their_own_preset_are_sent_apart_and_merged_in_order(service: FakeService) -> None:
    labels = ["1", json.dumps({"ground_truth": "2", "preset": "mentor", "eos_tokens": ["</s>"]}), "3"]
    out = orf.reward_func(["c1", "c2", "c3"], [], labels)
    assert out["rewards"].tolist() == [1.0, 2.0, 3.0]
    bodies = service.bodies()
    assert [len(b["items"]) for b in bodies] == [2, 1]
    assert all(b["preset"] == "mentor" for b in bodies)  # a scoring request always names its reward


def test_eos_tokens_from_the_environment(service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTOR_REWARD_EOS_TOKENS", "</s>")
    assert orf.EnvSettings.from_env().eos_tokens == ("</s>",)
    monkeypatch.setenv("MENTOR_REWARD_EOS_TOKENS", '["<|eot_id|>", "<|end_of_text|>"]')
    assert orf.EnvSettings.from_env().eos_tokens == ("<|eot_id|>", "<|end_of_text|>")


def test_item_error_raises_naming_the_query_unless_a_fallback_is_set(
    service: FakeService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(ItemScoringError, match=r"query 1 \(label '7'\)"):
        orf.reward_func(["c1", "bad"], [], ["1", "7"])
    # OpenRLHF logs reward failures at INFO only: the adapter says which query at ERROR first.
    assert "query 1 (label '7') could not be scored" in caplog.text
    monkeypatch.setenv("MENTOR_REWARD_ON_ERROR", "0")
    out = orf.reward_func(["c1", "bad"], [], ["1", "7"])
    assert out["rewards"].tolist() == [1.0, 0.0]
    assert out["extra_logs"]["item_error"].tolist() == [0.0, 1.0]
    assert out["extra_logs"]["outcome/applicable"].tolist() == [1.0, 0.0]


def test_malformed_label_names_the_query_and_field(service: FakeService, caplog: pytest.LogCaptureFixture) -> None:
    bad = json.dumps({"ground_truth": "1", "teacher_tools": [1]})
    with caplog.at_level(logging.ERROR), pytest.raises(ValueError, match=r"query 0 .*label.teacher_tools"):
        orf.reward_func(["c1"], [], [bad])
    assert "label.teacher_tools" in caplog.text


def test_the_file_loads_by_path_as_openrlhf_does() -> None:
    path = Path(orf.__file__)
    spec = importlib.util.spec_from_file_location("reward_func_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.reward_func)


def test_mismatched_lengths_are_refused(service: FakeService) -> None:
    with pytest.raises(ValueError):
        orf.reward_func(["a", "b"], ["p"], [])


def test_settings_change_picks_a_new_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orf, "_BACKENDS", {})
    monkeypatch.setenv("MENTOR_REWARD_URL", "http://a:1")
    first: Any = orf._backend(EnvSettings.from_env())
    assert orf._backend(EnvSettings.from_env()) is first
    monkeypatch.setenv("MENTOR_REWARD_URL", "http://b:1")
    second: Any = orf._backend(EnvSettings.from_env())
    assert second is not first and second.base_urls == ("http://b:1",)
