"""OpenRLHF 0.11.2's own reward path, on both routes, against a live service.

The path is OpenRLHF's: `SingleTurnAgentExecutor.execute` tokenizes the prompt, generates (a
scripted engine stands in for vLLM: token ids and a finish reason), decodes prompt + response
*with* special tokens, and fetches the reward from `--reward.remote_url`: the service's
`/v1/openrlhf` endpoint over HTTP (`_fetch_rewards_via_http`, aiohttp), or our `.py` file loaded
by path (`_fetch_rewards_via_func`). `SamplesGenerator._process_response_into_experience` turns
the result into the `Experience` whose `info` OpenRLHF averages into the step's metrics. Only the
CUDA-only modules are stubbed (`vllm`, the vLLM engine wrapper), as OpenRLHF's own tests do.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest
from trainers_catalogue import CASES, label_column, service_answers
from trainers_support import require

from mentor_client import RewardClient
from mentor_client.adapters import openrlhf_reward_func

pytestmark = [pytest.mark.e2e]

MAX_NEW_TOKENS = 96
PROMPT = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def openrlhf(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setitem(sys.modules, "vllm", MagicMock())
    monkeypatch.setitem(sys.modules, "openrlhf.trainer.ray.vllm_engine", MagicMock())
    agent = require("openrlhf.utils.agent")
    samples = require("openrlhf.trainer.ppo_utils.samples_generator")
    return SimpleNamespace(agent=agent, samples=samples)


class ScriptedEngine:
    """vLLM's `generate` as the executor uses it: token ids, text and a finish reason."""

    def __init__(self, tokenizer: Any, case: Any) -> None:
        ids = tokenizer(case.text, add_special_tokens=False)["input_ids"]
        self.ids = [*ids, tokenizer.eos_token_id] if case.finished else ids
        self.reason = "stop" if case.finished else "length"

    async def generate(self, prompt_ids: list[int], params: Any, multi_modal_data: Any = None) -> Any:
        output = SimpleNamespace(token_ids=list(self.ids), text="", finish_reason=self.reason, logprobs=None)
        return SimpleNamespace(outputs=[output])


def route(kind: str, service: Any, preset: str, monkeypatch: pytest.MonkeyPatch) -> str:
    if kind == "url":
        return f"{service.base_url}/v1/openrlhf?preset={preset}"
    monkeypatch.setenv("MENTOR_REWARD_URL", service.base_url)
    monkeypatch.setenv("MENTOR_REWARD_PRESET", preset)
    return openrlhf_reward_func.__file__


def run_executor(openrlhf: SimpleNamespace, url: str, tokenizer: Any, labels: list[Any]) -> list[Any]:
    """One experience per catalogue case, as OpenRLHF's rollout makes them."""
    executor = openrlhf.agent.SingleTurnAgentExecutor(url)
    params = SimpleNamespace(max_tokens=MAX_NEW_TOKENS, logprobs=None)

    async def rollout() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(
                    executor.execute(PROMPT, label, params, 512, tokenizer, ScriptedEngine(tokenizer, case))
                    for case, label in zip(CASES, labels, strict=True)
                )
            )
        )

    outputs = asyncio.run(rollout())
    process = openrlhf.samples.SamplesGenerator._process_response_into_experience
    return [process(None, output, max_len=512) for output in outputs]


def step_metrics(experiences: list[Any]) -> dict[str, float]:
    """OpenRLHF's reduction of `info` over a step: a plain mean per key, over the samples."""
    import torch

    keys = experiences[0].info.keys()
    assert all(e.info.keys() == keys for e in experiences)  # same keys for every sample
    return {k: torch.cat([e.info[k].flatten().float() for e in experiences]).mean().item() for k in keys}


@pytest.mark.parametrize("form", ["json", "dict"])
@pytest.mark.parametrize("kind", ["url", "py"])
def test_both_routes_match_the_service(
    openrlhf: SimpleNamespace,
    service: Any,
    client: RewardClient,
    tokenizer_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    form: str,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    labels = label_column(form)
    experiences = run_executor(openrlhf, route(kind, service, "flexible", monkeypatch), tokenizer, labels)
    expected = service_answers(client, "flexible", eos_tokens=[tokenizer.eos_token])
    rewards = [float(e.rewards.flatten()[0]) for e in experiences]
    assert rewards == pytest.approx([r for r, _ in expected], abs=1e-6)
    assert [rewards[i] for i, c in enumerate(CASES) if not c.finished] == [0.0, 0.0]  # truncation gated
    scores = [float(e.scores.flatten()[0]) for e in experiences]
    assert all(0.0 <= s <= 1.0 for s in scores)  # flexible ranges over [0, 1]: scores are the rewards
    assert scores == pytest.approx(rewards, abs=1e-6)
    metrics = step_metrics(experiences)
    assert all(math.isfinite(v) for v in metrics.values())
    # Each component's true mean over the samples it applies to is mean(c) / mean(c/applicable).
    for name in ("arguments", "tool_results"):
        applies = [c[name] for _, c in expected if c.get(name) is not None]
        assert metrics[f"{name}/applicable"] == pytest.approx(len(applies) / len(CASES))
        assert metrics[name] / metrics[f"{name}/applicable"] == pytest.approx(sum(applies) / len(applies))
    assert metrics["item_error"] == 0.0


def test_the_two_routes_log_the_same_numbers(
    openrlhf: SimpleNamespace,
    service: Any,
    tokenizer_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    labels = label_column("json")
    by_url = run_executor(openrlhf, route("url", service, "strict", monkeypatch), tokenizer, labels)
    by_file = run_executor(openrlhf, route("py", service, "strict", monkeypatch), tokenizer, labels)
    for a, b in zip(by_url, by_file, strict=True):
        assert float(a.rewards.flatten()[0]) == pytest.approx(float(b.rewards.flatten()[0]))
        assert float(a.scores.flatten()[0]) == pytest.approx(float(b.scores.flatten()[0]))
        assert a.info.keys() == b.info.keys()
        for key in a.info:
            assert a.info[key].flatten().tolist() == pytest.approx(b.info[key].flatten().tolist()), key
    # strict ranges over [0, 1.1]: a full reward is a score of 1.0, never more.
    assert max(float(e.scores.flatten()[0]) for e in by_url) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["url", "py"])
def test_non_chatml_eos_from_the_label(
    openrlhf: SimpleNamespace,
    service: Any,
    client: RewardClient,
    tokenizer_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["llama"])
    labels = [json.dumps({**c.label, "eos_tokens": ["</s>"]}) for c in CASES]
    experiences = run_executor(openrlhf, route(kind, service, "strict", monkeypatch), tokenizer, labels)
    expected = service_answers(client, "strict", eos_tokens=["</s>"])
    assert [float(e.rewards.flatten()[0]) for e in experiences] == pytest.approx([r for r, _ in expected], abs=1e-6)
    assert max(r for r, _ in expected if r is not None) > 1.0


@pytest.mark.parametrize("kind", ["url", "py"])
def test_a_malformed_label_is_named(
    openrlhf: SimpleNamespace,
    service: Any,
    tokenizer_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dirs["chatml"])
    labels = label_column("json")
    labels[2] = json.dumps({"ground_truth": "5", "teacher_tools": [1]})
    url = route(kind, service, "flexible", monkeypatch)
    with caplog.at_level("INFO"):
        experiences = run_executor(openrlhf, url, tokenizer, labels)
    # OpenRLHF swallows the failure (reward None, logged at INFO) ...
    assert experiences[2].rewards is None and experiences[1].rewards is not None
    if kind == "py":
        # ... but the file logged which label, and why, at ERROR first.
        assert any(r.levelname == "ERROR" and "label.teacher_tools" in r.getMessage() for r in caplog.records)
    else:
        # ... and the service logged and counted it (its log and /metrics are the place to look).
        import httpx

        metrics = httpx.get(service.base_url + "/metrics").text
        assert 'mentor_item_errors_total{type="invalid_label"}' in metrics
