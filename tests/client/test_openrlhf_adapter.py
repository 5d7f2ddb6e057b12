"""The OpenRLHF reward file: query minus prompt, labels as references, tensors out."""

from __future__ import annotations

import importlib.util
import json
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
    assert out["scores"].tolist() == out["rewards"].tolist()
    assert set(out["extra_logs"]) == {"outcome", "tool_names"}
    tools = out["extra_logs"]["tool_names"].tolist()
    assert tools[0] == pytest.approx(0.02) and math.isnan(tools[1]) and tools[2] == pytest.approx(0.05)
    (body,) = service.bodies()
    assert [i["completion"] for i in body["items"]] == ["c2", "c3", "c5"]
    assert body["items"][1]["teacher_tools"] == ["add"]
    assert all("finished" not in i for i in body["items"])  # the text keeps its EOS token


def test_lists_when_torch_is_missing(service: FakeService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    out = orf.reward_func(["P c4"], ["P "], ["4"])
    assert out["rewards"] == [4.0]
    assert out["extra_logs"]["outcome"] == [1.0]


def test_labels_with_their_own_preset_are_sent_apart_and_merged_in_order(service: FakeService) -> None:
    labels = ["1", json.dumps({"ground_truth": "2", "preset": "sparse"}), "3"]
    out = orf.reward_func(["c1", "c2", "c3"], [], labels)
    assert out["rewards"].tolist() == [1.0, 2.0, 3.0]
    presets = sorted((b.get("preset") or "") for b in service.bodies())
    assert presets == ["", "sparse"]


def test_item_error_raises_unless_a_fallback_is_set(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ItemScoringError, match="item 1"):
        orf.reward_func(["c1", "bad"], [], [])
    monkeypatch.setenv("MENTOR_REWARD_ON_ERROR", "0")
    out = orf.reward_func(["c1", "bad"], [], [])
    assert out["rewards"].tolist() == [1.0, 0.0]


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
