"""verl's `compute_score`: same keys every call, floats only, references from the sample."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from client_fakes import FakeService

from mentor_client import (
    AsyncRewardClient,
    ItemScoringError,
    RetriesExhaustedError,
    RetryPolicy,
    RewardClient,
)
from mentor_client.adapters import verl

FAST = RetryPolicy(max_retries=1, backoff_base=0.0)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeService:
    fake = FakeService()
    monkeypatch.setattr(verl, "_SERVICES", {})
    monkeypatch.setattr(
        verl._Service,
        "_async_client",
        lambda self: AsyncRewardClient("http://svc", retry=FAST, transport=fake.async_transport()),
    )
    monkeypatch.setattr(
        verl._Service,
        "sync_client",
        lambda self: RewardClient("http://svc", retry=FAST, transport=fake.transport()),
    )
    return fake


@pytest.fixture(params=["async", "sync"])
def compute(request: pytest.FixtureRequest) -> Any:
    """compute_score or compute_score_sync, called the same way."""
    if request.param == "sync":
        return verl.compute_score_sync

    def run(*args: Any, **kwargs: Any) -> dict[str, float]:
        return asyncio.run(verl.compute_score(*args, **kwargs))

    return run


def sent_items(service: FakeService) -> list[dict[str, Any]]:
    return [item for body in service.bodies() for item in body["items"]]


def test_same_keys_every_call_and_none_for_not_applicable(service: FakeService, compute: Any) -> None:
    answers = [compute("gsm8k", text, "5") for text in ("c2", "c3", "c5")]
    assert [set(a) for a in answers] == [{"score", "outcome", "tool_names"}] * 3
    assert all(
        isinstance(v, float) for a in answers for k, v in a.items() if (a is not answers[1] or k != "tool_names")
    )
    assert [a["score"] for a in answers] == [2.0, 3.0, 5.0]
    # 3 divides 3: not applicable. verl's metric code drops None (never NaN, never a made-up 0.0).
    assert answers[1]["tool_names"] is None
    assert answers[2]["tool_names"] == 0.05
    # The component keys are asked of the service once per process, not per sample.
    assert len([r for r in service.requests if r.url.path == "/v1/specs/validate"]) == 1


def test_item_error_raises_by_default_and_names_the_sample(
    service: FakeService, compute: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(ItemScoringError, match=r"verl sample 17 \(gsm8k\).*invalid_item"),
    ):
        compute("gsm8k", "bad", "5", {"index": 17})
    assert "verl sample 17 (gsm8k) could not be scored" in caplog.text


def test_malformed_reference_names_the_sample(service: FakeService, compute: Any) -> None:
    with pytest.raises(ValueError, match=r"verl sample 3 \(gsm8k\): ground_truth.teacher_tools"):
        compute("gsm8k", "c1", {"ground_truth": "1", "teacher_tools": [1, 2]}, {"index": 3})


def test_item_error_fallback_is_explicit_and_keeps_the_keys(
    service: FakeService, compute: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MENTOR_REWARD_ON_ERROR", "-1")
    good = compute("gsm8k", "c2", "2")
    with caplog.at_level(logging.WARNING):
        failed = compute("gsm8k", "bad", "2")
    assert set(failed) == set(good)
    assert failed["score"] == -1.0
    assert failed["outcome"] is None
    assert "could not be scored" in caplog.text


def test_unreachable_service_raises(service: FakeService, compute: Any) -> None:
    service.down.add("svc")
    with pytest.raises(RetriesExhaustedError):
        compute("gsm8k", "c1", "1")


@pytest.mark.parametrize(
    ("ground_truth", "extra_info", "expected"),
    [
        ("42", None, {"ground_truth": "42"}),
        (
            json.dumps({"ground_truth": "42", "teacher_tools": ["add"]}),
            None,
            {"ground_truth": "42", "teacher_tools": ["add"]},
        ),
        (
            {
                "ground_truth": ["42", "42.0"],
                "reference": {"calls": [{"name": "add", "arguments": {"a": 1}}]},
            },
            None,
            {
                "ground_truth": ["42", "42.0"],
                "reference": {"calls": [{"name": "add", "arguments": {"a": 1}}]},
            },
        ),
        ("{1, 2}", None, {"ground_truth": "{1, 2}"}),
        (
            # Arrow (parquet, datasets) fills the keys other rows have with null: read as absent.
            {
                "ground_truth": "5",
                "teacher_tools": None,
                "reference": {
                    "calls": [{"name": "add", "arguments": {"a": 2, "b": 3, "x": None}, "result": None}],
                    "answer": None,
                    "possible_answers": None,
                },
                "preset": None,
                "toolset": None,
            },
            None,
            {"ground_truth": "5", "reference": {"calls": [{"name": "add", "arguments": {"a": 2, "b": 3, "x": None}}]}},
        ),
        ("7", {"teacher_tools": ["multiply"]}, {"ground_truth": "7", "teacher_tools": ["multiply"]}),
        (
            {"tool_calls_used": ["divide"]},
            None,
            {"teacher_tools": ["divide"]},
        ),
    ],
    ids=[
        "plain",
        "json-string",
        "dict-with-trace",
        "set-notation-is-text",
        "arrow-null-filled",
        "extra-info-tools",
        "paper-key",
    ],
)
def test_reference_from_the_sample(
    service: FakeService, compute: Any, ground_truth: Any, extra_info: Any, expected: dict[str, Any]
) -> None:
    compute("gsm8k", "c1", ground_truth, extra_info)
    (item,) = sent_items(service)
    item.pop("completion")
    item.pop("finished", None)
    item.get("reference", {}).pop("possible_answers", None)
    for call in item.get("reference", {}).get("calls", []):
        if call.get("result") is None:
            call.pop("result", None)
    assert item == expected


@pytest.mark.parametrize(
    ("env", "extra_info", "finished"),
    [
        (None, None, True),
        (None, {"finished": False}, False),
        ("detect", None, None),
        ("detect", {"finished": True}, True),
    ],
    ids=["assumed", "told-truncated", "detect", "detect-but-told"],
)
def test_termination(
    service: FakeService,
    compute: Any,
    monkeypatch: pytest.MonkeyPatch,
    env: str | None,
    extra_info: dict[str, Any] | None,
    finished: bool | None,
) -> None:
    if env:
        monkeypatch.setenv("MENTOR_REWARD_FINISHED", env)
    compute("gsm8k", "c1", "1", extra_info)
    assert sent_items(service)[0].get("finished") is finished


def test_environment_chooses_preset_and_toolset(
    service: FakeService, compute: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTOR_REWARD_PRESET", "mentor-f1")
    monkeypatch.setenv("MENTOR_REWARD_TOOLSET", "bfcl")
    compute("x", "c1", "1")
    compute("x", "c1", json.dumps({"ground_truth": "1", "preset": "sparse"}))
    first, second = service.bodies()
    assert (first["preset"], first["toolset"]) == ("mentor-f1", "bfcl")
    assert second["preset"] == "sparse"  # the sample's own preset wins
    validate = [json.loads(r.content) for r in service.requests if r.url.path == "/v1/specs/validate"]
    assert validate == [{"preset": "mentor-f1"}]  # keys always come from the environment's reward


def test_inline_spec_from_the_environment(service: FakeService, compute: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"components": {"outcome": {"weight": 1.0}}}
    monkeypatch.setenv("MENTOR_REWARD_PRESET", "ignored-when-a-spec-is-given")
    monkeypatch.setenv("MENTOR_REWARD_SPEC", json.dumps(spec))
    compute("x", "c1", "1")
    (body,) = service.bodies()
    assert body["spec"] == spec and "preset" not in body


# ---------------------------------------------------------------------------- the reward manager
class _Tokenizer:
    """Token ids are the characters' code points; 0 is EOS."""

    eos_token = "<eos>"
    eos_token_id = 0

    def batch_decode(self, ids: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
        return ["".join(chr(t) for t in seq if not (skip_special_tokens and t == 0)) for seq in ids]


class _Sample(list[Any]):
    """A one-item verl batch: the fields `run_single` reads."""

    def __init__(self, text: str, ground_truth: Any, *, eos: bool = True, index: int = 0, step: int = 2) -> None:
        import torch

        ids = [ord(c) for c in text] + ([0] if eos else [])
        item = SimpleNamespace(
            batch={
                "responses": torch.tensor(ids + [0] * 4),
                "attention_mask": torch.tensor([1] * len(ids) + [0] * 4),
            },
            non_tensor_batch={
                "data_source": "gsm8k",
                "reward_model": {"ground_truth": ground_truth},
                "extra_info": {"index": index},
            },
        )
        super().__init__([item])
        self.meta_info = {"global_steps": step}


@pytest.fixture
def manager(service: FakeService) -> Any:
    from mentor_client.adapters import verl_manager

    def make(**kwargs: Any) -> Any:
        config = SimpleNamespace(reward={"reward_kwargs": {"url": "http://svc", "run_id": "r1", **kwargs}})
        m = verl_manager.MentorRewardManager(config, _Tokenizer())
        m._new_client = lambda: AsyncRewardClient("http://svc", retry=FAST, transport=service.async_transport())
        m._clients = verl_manager.PerLoop(m._new_client)
        return m

    return make


def run_step(m: Any, samples: list[_Sample]) -> list[Any]:
    async def step() -> list[Any]:
        return list(await asyncio.gather(*(m.run_single(s) for s in samples), return_exceptions=True))

    return asyncio.run(step())


def test_manager_scores_a_step_in_one_request(manager: Any, service: FakeService) -> None:
    m = manager()
    label = json.dumps({"ground_truth": "2", "teacher_tools": ["add"]})
    out = run_step(m, [_Sample("c2", label), _Sample("c3", label, eos=False), _Sample("c5", "5")])
    (body,) = service.bodies()
    assert [i["finished"] for i in body["items"]] == [True, False, True]  # from the last token id
    assert (body["run_id"], body["step"], body["preset"], body["eos_tokens"]) == ("r1", 2, "mentor", ["<eos>"])
    assert [o["reward_score"] for o in out] == [2.0, 3.0, 5.0]
    infos = [o["reward_extra_info"] for o in out]
    assert [set(i) for i in infos] == [
        {"score", "outcome", "tool_names", "finished", "tool_call", "invalid_tool_rate"}
    ] * 3
    assert infos[1]["tool_names"] is None  # not applicable: None, which verl drops
    assert [i["finished"] for i in infos] == [1.0, 0.0, 1.0]
    assert [i["tool_call"] for i in infos] == [0.0, 1.0, 1.0]  # the fake: N % 2 calls
    assert infos[2]["invalid_tool_rate"] == 1.0 and infos[0]["invalid_tool_rate"] is None
    assert m.requests_sent == 1


def test_manager_item_error_names_the_sample(manager: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        out = run_step(manager(), [_Sample("c2", "2", index=0), _Sample("bad", "2", index=9)])
    assert out[0]["reward_score"] == 2.0
    assert isinstance(out[1], ItemScoringError) and "verl sample 9 (gsm8k)" in str(out[1])
    assert "verl sample 9 (gsm8k) could not be scored" in caplog.text
    fallback = run_step(manager(on_error=-1.0), [_Sample("bad", "2")])
    assert fallback[0]["reward_score"] == -1.0 and fallback[0]["reward_extra_info"]["outcome"] is None


def test_manager_unreachable_service_fails_every_sample(manager: Any, service: FakeService) -> None:
    service.down.add("svc")
    out = run_step(manager(), [_Sample("c2", "2"), _Sample("c4", "4")])
    assert all(isinstance(o, RetriesExhaustedError) for o in out)


@pytest.mark.parametrize("name", ["verl.py", "verl_manager.py"])
def test_files_load_by_path_as_verl_loads_them(name: str) -> None:
    # verl's load_module runs a file path without registering it in sys.modules.
    import importlib.util
    from pathlib import Path

    path = Path(verl.__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"custom_module_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, "compute_score", None) or module.MentorRewardManager)


def test_manager_gathers_samples_arriving_one_by_one_within_the_window(manager: Any, service: FakeService) -> None:
    # The agent loop streams trajectories one call at a time: each arrives in its own tick,
    # and the window gathers them into one request.
    m = manager(batch_window_s=5.0)

    async def trickle() -> list[Any]:
        tasks = []
        for n in (2, 4, 6):
            tasks.append(asyncio.ensure_future(m.run_single(_Sample(f"c{n}", str(n)))))
            await asyncio.sleep(0)  # the next sample comes in a later tick
            await asyncio.sleep(0)
        assert m.requests_sent == 0  # still waiting for the window
        m._flush_now()  # the window's end, without waiting 5 s
        return list(await asyncio.gather(*tasks))

    out = asyncio.run(trickle())
    assert [o["reward_score"] for o in out] == [2.0, 4.0, 6.0]
    assert m.requests_sent == 1 and len(service.bodies()) == 1
