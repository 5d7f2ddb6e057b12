"""The TRL reward function: TRL's calling convention, pickling, per-loop clients, termination."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import pickle
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from client_fakes import SPEC, FakeService

from mentor_client import (
    AsyncRewardClient,
    ClientConfig,
    MentorReward,
    ResponseValidationError,
    RetriesExhaustedError,
    RetryPolicy,
    RewardClient,
    trl_component_reward_funcs,
    trl_reward_func,
)
from mentor_client.adapters import trl as trl_module

FAST = RetryPolicy(max_retries=1, backoff_base=0.0)


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch, service: FakeService) -> list[AsyncRewardClient]:
    """Every AsyncRewardClient the rewards make, wired to the fake service."""
    made: list[AsyncRewardClient] = []

    def new_client(self: MentorReward) -> AsyncRewardClient:
        client = AsyncRewardClient("http://svc", retry=FAST, transport=service.async_transport())
        made.append(client)
        return client

    monkeypatch.setattr(MentorReward, "_new_client", new_client)
    return made


def call(reward: MentorReward, completions: list[Any], **kwargs: Any) -> list[float | None]:
    """As TRL calls it: keywords only, one prompt per completion."""
    prompts = kwargs.pop("prompts", ["p"] * len(completions))
    return asyncio.run(reward(prompts=prompts, completions=completions, **kwargs))


def sent_items(service: FakeService) -> list[dict[str, Any]]:
    return [item for body in service.bodies() for item in body["items"]]


# ---------------------------------------------------------------------------- identity
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({}, "mentor"), ({"component": "outcome"}, "mentor_outcome"), ({"name": "tool_reward"}, "tool_reward")],
    ids=["default", "component", "explicit"],
)
def test_metric_name(kwargs: dict[str, Any], name: str) -> None:
    reward = trl_reward_func("http://svc", **kwargs)
    assert reward.__name__ == name
    assert pickle.loads(pickle.dumps(reward)).__name__ == name
    assert MentorReward.__dict__["__name__"] == "mentor"  # the class-level default TRL reads


def test_call_is_a_real_coroutine_function() -> None:
    # TRL's is_async_callable checks exactly this for callable instances.
    assert inspect.iscoroutinefunction(trl_reward_func("http://svc").__call__)


@pytest.mark.slow
def test_trl_itself_sees_an_async_reward_with_our_name() -> None:
    from trl.trainer.utils import get_callable_name, is_async_callable

    reward = pickle.loads(pickle.dumps(trl_reward_func("http://svc", component="outcome")))
    assert is_async_callable(reward)
    assert get_callable_name(reward) == "mentor_outcome"


# ---------------------------------------------------------------------------- the call
def test_returns_one_reward_per_prompt_in_order(service: FakeService, created: list[AsyncRewardClient]) -> None:
    rewards = call(trl_reward_func("http://svc"), [f"c{i}" for i in range(7)])
    assert rewards == [float(i) for i in range(7)]


def test_item_error_is_none_not_zero(service: FakeService, created: list[AsyncRewardClient]) -> None:
    assert call(trl_reward_func("http://svc"), ["c4", "bad", "c5"]) == [4.0, None, 5.0]


def test_unreachable_service_raises(service: FakeService, created: list[AsyncRewardClient]) -> None:
    service.down.add("svc")
    with pytest.raises(RetriesExhaustedError):
        call(trl_reward_func("http://svc"), ["c1", "c2"])


def test_wrong_result_count_raises(service: FakeService, created: list[AsyncRewardClient]) -> None:
    service.drop_last_result = True
    with pytest.raises(ResponseValidationError):
        call(trl_reward_func("http://svc"), ["c1", "c2"])


def test_prompts_and_completions_must_pair_up(created: list[AsyncRewardClient]) -> None:
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        call(trl_reward_func("http://svc"), ["c1"], prompts=["p", "q"])


def test_columns_become_the_reference(service: FakeService, created: list[AsyncRewardClient]) -> None:
    reference = {"calls": [{"name": "add", "arguments": {"a": 1, "b": 2}, "result": 3}], "answer": "3"}
    call(
        trl_reward_func("http://svc"),
        ["c1", "c2", "c3"],
        reference=[reference, json.dumps(reference), None],
        ground_truth=["3", 3, ["3", "three"]],
        teacher_tools=[None, None, '["add", "multiply"]'],
    )
    first, second, third = sent_items(service)
    assert first["reference"]["calls"][0] == {"name": "add", "arguments": {"a": 1, "b": 2}, "result": 3}
    assert second["reference"] == first["reference"]
    # Ground truths travel as the dataset holds them: the engine is their one reader.
    assert (first["ground_truth"], second["ground_truth"], third["ground_truth"]) == (
        "3",
        3,
        ["3", "three"],
    )
    assert third["teacher_tools"] == ["add", "multiply"]
    assert "reference" not in third


def test_malformed_reference_column_names_the_row(created: list[AsyncRewardClient]) -> None:
    with pytest.raises(ValueError, match="row 1"):
        call(trl_reward_func("http://svc"), ["c1", "c2"], reference=[None, "{not json"])
    with pytest.raises(ValueError, match="one value per completion"):
        call(trl_reward_func("http://svc"), ["c1", "c2"], ground_truth=["1"])


def test_trl_extras_are_used_or_dropped_never_sent(service: FakeService, created: list[AsyncRewardClient]) -> None:
    class Unserialisable:
        pass

    logged: list[tuple[str, float]] = []
    call(
        trl_reward_func("http://svc", run_id="run-1", toolset="calculator"),
        ["c1", "c2"],
        trainer_state=SimpleNamespace(global_step=7, unserialisable=Unserialisable()),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: logged.append((name, value)),
        environments=[Unserialisable(), Unserialisable()],
        some_other_column=[Unserialisable(), Unserialisable()],
    )
    (body,) = service.bodies()
    assert set(body) == {"preset", "toolset", "parser", "items", "run_id", "step"}
    assert (body["step"], body["run_id"], body["preset"], body["toolset"]) == (
        7,
        "run-1",
        "mentor",
        "calculator",
    )
    assert all(set(item) <= {"completion", "finished"} for item in body["items"])


def test_component_means_go_to_log_metric(service: FakeService, created: list[AsyncRewardClient]) -> None:
    logged: dict[str, float] = {}
    # c2: outcome 1, tool_names 0.02; c3: outcome 0, tool_names n/a; c5: outcome 0, tool_names 0.05.
    call(trl_reward_func("http://svc"), ["c2", "c3", "c5"], log_metric=lambda n, v: logged.__setitem__(n, v))
    assert logged == pytest.approx({"outcome": 1 / 3, "tool_names": 0.035})


def test_conversational_completions_with_tool_calls(service: FakeService, created: list[AsyncRewardClient]) -> None:
    class Image:
        def __str__(self) -> str:
            return "<image>"

    completion = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}],
        },
        {
            "role": "tool",
            "name": "add",
            "content": [{"type": "image", "image": Image()}, {"type": "text", "text": "5"}],
        },
        {"role": "assistant", "content": "\\boxed{5}"},
    ]
    rewards = call(trl_reward_func("http://svc"), [completion])
    assert len(rewards) == 1
    (item,) = sent_items(service)
    assert item["completion"][0]["tool_calls"][0]["function"]["arguments"] == {"a": 2, "b": 3}
    assert item["completion"][1]["content"] == [
        {"type": "image", "image": "<image>"},
        {"type": "text", "text": "5"},
    ]


# ---------------------------------------------------------------------------- termination
@pytest.mark.parametrize(
    ("ids", "finished"),
    [([5, 6, 2], True), ([5, 6, 9], False), ([5, 2, 7, 8], False), ([], False), ([4, 3], True)],
    ids=["ends-with-eos", "truncated", "tool-loop-truncated", "empty", "second-eos-id"],
)
def test_finished_comes_from_the_last_token(
    service: FakeService, created: list[AsyncRewardClient], ids: list[int], finished: bool
) -> None:
    call(trl_reward_func("http://svc", eos_token_id=[2, 3]), ["c1"], completion_ids=[ids])
    assert sent_items(service)[0]["finished"] is finished


def test_without_eos_id_the_service_decides_and_a_warning_says_why(
    service: FakeService, created: list[AsyncRewardClient], caplog: pytest.LogCaptureFixture
) -> None:
    reward = trl_reward_func("http://svc")
    with caplog.at_level(logging.WARNING, logger="mentor_client.adapters.trl"):
        call(reward, ["c1", "c2"], completion_ids=[[1, 2], [3]])
        call(reward, ["c1"], completion_ids=[[1, 2]])
    assert all("finished" not in item for item in sent_items(service))
    assert len([r for r in caplog.records if "eos_token_id" in r.getMessage()]) == 1


# ---------------------------------------------------------------------------- pickling and loops
def test_pickle_round_trip_keeps_only_configuration(service: FakeService, created: list[AsyncRewardClient]) -> None:
    config = ClientConfig(timeout=5.0, retry=FAST, chunk_size=8)
    reward = trl_reward_func(["http://a", "http://b"], preset="mentor-f1", eos_token_id=2, api_key="sk", config=config)
    call(reward, ["c1"])  # a live client now exists for that (closed) loop
    assert set(reward.__getstate__()) == {"settings"}
    clone = pickle.loads(pickle.dumps(reward))
    assert isinstance(clone, MentorReward)
    assert clone._settings == reward._settings
    assert call(clone, ["c3", "c4"]) == [3.0, 4.0]
    assert service.bodies()[-1]["preset"] == "mentor-f1"


def test_one_client_per_event_loop(service: FakeService, created: list[AsyncRewardClient]) -> None:
    reward = trl_reward_func("http://svc")

    async def twice() -> None:
        await reward(prompts=["p"], completions=["c1"])
        await reward(prompts=["p"], completions=["c2"])

    asyncio.run(twice())
    assert len(created) == 1  # reused within a loop
    asyncio.run(twice())
    assert len(created) == 2  # a new loop gets its own


def test_two_loops_in_two_threads_at_once(service: FakeService, created: list[AsyncRewardClient]) -> None:
    service.delay_s = 0.02
    reward = trl_reward_func("http://svc")
    results: dict[str, list[float | None]] = {}
    barrier = threading.Barrier(2)

    def worker(tag: str, completions: list[str]) -> None:
        async def run() -> list[float | None]:
            barrier.wait()
            return await reward(prompts=["p"] * len(completions), completions=completions)

        results[tag] = asyncio.run(run())

    threads = [
        threading.Thread(target=worker, args=("x", ["c1", "c2"])),
        threading.Thread(target=worker, args=("y", ["c7"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"x": [1.0, 2.0], "y": [7.0]}
    assert len(created) == 2 and created[0] is not created[1]


# ---------------------------------------------------------------------------- components
def test_component_reward_is_the_raw_component(service: FakeService, created: list[AsyncRewardClient]) -> None:
    reward = trl_reward_func("http://svc", component="tool_names")
    assert call(reward, ["c2", "c3", "bad"]) == [0.02, None, None]


def test_unknown_component_is_refused(service: FakeService, created: list[AsyncRewardClient]) -> None:
    with pytest.raises(ValueError, match="'format' is not part of this reward spec"):
        call(trl_reward_func("http://svc", component="format"), ["c2"])


def test_component_group_shares_one_request(service: FakeService, created: list[AsyncRewardClient]) -> None:
    funcs = trl_component_reward_funcs("http://svc", components=["outcome", "tool_names"])
    assert [f.__name__ for f in funcs] == ["mentor_outcome", "mentor_tool_names"]
    prompts, completions = ["p", "p"], ["c2", "c5"]
    logged: list[str] = []

    async def step() -> list[list[float | None]]:
        # As TRL gathers its async reward functions: same lists, concurrently.
        return await asyncio.gather(
            *(f(prompts=prompts, completions=completions, log_metric=lambda n, v: logged.append(n)) for f in funcs)
        )

    outcome, tools = asyncio.run(step())
    assert outcome == [1.0, 0.0]
    assert tools == [0.02, 0.05]
    assert len(service.bodies()) == 1
    assert logged == []  # the component functions are already their own metrics
    asyncio.run(step())
    assert len(service.bodies()) == 2  # the next step is a new request


def test_component_group_pickles(service: FakeService, created: list[AsyncRewardClient]) -> None:
    funcs = pickle.loads(pickle.dumps(trl_component_reward_funcs("http://svc", components=["outcome"])))
    assert call(funcs[0], ["c4"]) == [1.0]


def test_component_list_is_asked_of_the_service(monkeypatch: pytest.MonkeyPatch, service: FakeService) -> None:
    def client(*args: Any, **kwargs: Any) -> RewardClient:
        return RewardClient(*args, transport=service.transport(), **kwargs)

    monkeypatch.setattr(trl_module, "RewardClient", client)
    funcs = trl_component_reward_funcs("http://svc", preset="mentor")
    assert [f.component for f in funcs] == list(SPEC["components"])  # type: ignore[call-overload,unused-ignore]
    assert json.loads(service.requests[0].content) == {"preset": "mentor"}


def test_inline_spec_replaces_the_preset(service: FakeService, created: list[AsyncRewardClient]) -> None:
    spec = {"components": {"outcome": {"weight": 1.0}}}
    call(trl_reward_func("http://svc", spec=spec, toolset=None), ["c1"])
    (body,) = service.bodies()
    assert body["spec"] == spec
    assert "preset" not in body and "toolset" not in body


# ---------------------------------------------------------------------------- tools, EOS, gates, Arrow
def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather in a city.

    Args:
        city: the city's name
        unit: celsius or fahrenheit
    """
    return f"sunny in {city}"


def test_users_own_tools_are_sent_as_schemas(service: FakeService, created: list[AsyncRewardClient]) -> None:
    call(trl_reward_func("http://svc", tools=[get_weather]), ["c1"])
    (body,) = service.bodies()
    assert "toolset" not in body
    (tool,) = body["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["city"]
    schema = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    call(trl_reward_func("http://svc", tools=[schema]), ["c1"])
    assert service.bodies()[-1]["tools"] == [schema]
    with pytest.raises(ValueError, match="not both"):
        trl_reward_func(tools=[get_weather], toolset="calculator")


def test_tokenizer_gives_eos_ids_and_text(service: FakeService, created: list[AsyncRewardClient]) -> None:
    tokenizer = SimpleNamespace(eos_token="</s>", eos_token_id=2)
    reward = trl_reward_func("http://svc", tokenizer=tokenizer)
    call(reward, ["c1", "c2"], completion_ids=[[5, 2], [5, 6]])
    (body,) = service.bodies()
    assert body["eos_tokens"] == ["</s>"]
    assert [item["finished"] for item in body["items"]] == [True, False]  # truncated: no EOS id at the end
    assert pickle.loads(pickle.dumps(reward))._settings.eos_tokens == ("</s>",)


def test_arrow_null_filled_reference_is_read_as_absent(service: FakeService, created: list[AsyncRewardClient]) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {"calls": [{"name": "add", "arguments": {"a": 2, "b": 3}, "result": 5}], "answer": "5"},
        {"calls": [{"name": "sqrt", "arguments": {"x": 4}, "result": 2}], "answer": "2"},
    ]
    as_dicts = datasets.Dataset.from_dict({"reference": rows})
    as_text = datasets.Dataset.from_dict({"reference": [json.dumps(r) for r in rows]})
    assert as_dicts[0]["reference"]["calls"][0]["arguments"] == {"a": 2, "b": 3, "x": None}  # Arrow's filler
    call(trl_reward_func("http://svc"), ["c1", "c2"], reference=as_dicts["reference"])
    call(trl_reward_func("http://svc"), ["c1", "c2"], reference=as_text["reference"])
    from_dicts, from_text = service.bodies()
    for body in (from_dicts, from_text):
        assert [i["reference"]["answer"] for i in body["items"]] == ["5", "2"]
    # The null argument travels as null: the engine reads it as an absent argument.
    assert from_dicts["items"][0]["reference"]["calls"][0]["arguments"] == {"a": 2, "b": 3, "x": None}
    assert from_text["items"][0]["reference"]["calls"][0]["arguments"] == {"a": 2, "b": 3}


def test_gated_component_functions_rebuild_the_reward() -> None:
    spec = {
        "components": {
            "outcome": {"weight": 0.7},
            "tool_names": {"weight": 0.3, "wrong_answer_scale": 0.2},
            "efficiency": {"weight": 0.0},
        },
        "bias": 0.0,
        "none_policy": "skip",
    }
    gates = trl_module._GatedSpec.of(spec)
    # Right answer: the full weights; wrong answer: the tool term scaled; n/a stays None.
    assert gates.share("tool_names", {"outcome": 1.0, "tool_names": 0.5}) == pytest.approx(0.15)
    assert gates.share("tool_names", {"outcome": 0.0, "tool_names": 0.5}) == pytest.approx(0.03)
    assert gates.share("tool_names", {"outcome": 1.0, "tool_names": None}) is None
    assert gates.share("efficiency", {"efficiency": 1.0}) == 0.0
    with pytest.raises(ValueError, match="clip"):
        trl_module._GatedSpec.of({**spec, "clip": [0, 1]})


def test_gated_functions_give_the_gate_reward_to_the_gate_function(
    service: FakeService, created: list[AsyncRewardClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def client(*args: Any, **kwargs: Any) -> RewardClient:
        return RewardClient(*args, transport=service.transport(), **kwargs)

    monkeypatch.setattr(trl_module, "RewardClient", client)
    funcs = trl_component_reward_funcs("http://svc", gated=True)
    assert [f.__name__ for f in funcs] == ["mentor_outcome", "mentor_tool_names", "mentor_gate"]
    prompts, completions = ["p", "p"], ["c2", "c5"]
    original = trl_module.MentorReward._values

    def gate_second(self: MentorReward, response: Any) -> Any:
        response.results[1].reason = "gate not_finished → 0"
        response.results[1].reward = 0.0
        return original(self, response)

    monkeypatch.setattr(trl_module.MentorReward, "_values", gate_second)

    async def step() -> list[list[float | None]]:
        return list(await asyncio.gather(*(f(prompts=prompts, completions=completions) for f in funcs)))

    outcome, tool_names, gate = asyncio.run(step())
    # c2: outcome 1 (weight 0.7), tool_names 0.02 (weight 0.3); c5 was gated: all of it in the gate.
    assert outcome == pytest.approx([0.7, 0.0]) and tool_names == pytest.approx([0.006, 0.0])
    assert gate == [0.0, 0.0]
    assert len(service.bodies()) == 1  # one request for the group
    assert sum(v[0] for v in (outcome, tool_names, gate)) == pytest.approx(0.706)


def test_trl_tools_reproduce_the_toolset_schema_and_run_on_the_service(
    monkeypatch: pytest.MonkeyPatch, service: FakeService
) -> None:
    import importlib

    from transformers.utils.chat_template_utils import get_json_schema

    tools_module = importlib.import_module("mentor_client.adapters.trl_tools")  # the name is also a function
    monkeypatch.setattr(
        tools_module, "RewardClient", lambda *a, **k: RewardClient(*a, transport=service.transport(), **k)
    )
    monkeypatch.setattr(
        tools_module,
        "AsyncRewardClient",
        lambda *a, **k: AsyncRewardClient(*a, transport=service.async_transport(), **k),
    )
    schema = {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number", "description": "first"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    }
    monkeypatch.setattr(tools_module.ToolExecutor, "schemas", lambda self, toolset: [schema])
    (add,) = tools_module.trl_tools("calculator", "http://svc")
    assert inspect.iscoroutinefunction(add) and add.__name__ == "add"
    rendered = get_json_schema(add)  # what TRL shows the model
    assert rendered["function"]["parameters"]["required"] == ["a", "b"]
    assert rendered["function"]["parameters"]["properties"]["a"] == {"type": "number", "description": "first"}
    assert asyncio.run(add(a=2, b=3)) == "5"  # the fake service adds the arguments
    (body,) = service.bodies("/v1/tools/execute")
    assert body == {"toolset": "calculator", "name": "add", "arguments": {"a": 2, "b": 3}}
    assert pickle.loads(pickle.dumps(tools_module.ToolExecutor("http://svc"))).base_url == "http://svc"


@pytest.mark.parametrize("preset", ["mentor", "mentor-f1", "strict", "flexible", "sparse"])
def test_gated_components_sum_to_the_presets_reward_with_the_engine(preset: str) -> None:
    """With the real engine (in-process): finished, truncated, wrong, no call, names and traces."""
    pytest.importorskip("mentor_server.scoring")
    add = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\n'
    trace = json.dumps({"calls": [{"name": "add", "arguments": {"a": 2, "b": 3}, "result": 5}], "answer": "5"})
    rows = [  # (completion, finished, reference, teacher_tools)
        (add + "\\boxed{5}", True, None, ["add"]),
        (add + "\\boxed{5}", False, None, ["add"]),
        (add + "\\boxed{6}", True, None, ["add"]),
        ("\\boxed{5}", True, None, ["add"]),
        (add + "\\boxed{5}", True, trace, None),
        ('<tool_call>\n{"name": "sqrt", "arguments": {"x": 4}}\n</tool_call>\n\\boxed{5}', True, trace, None),
    ]
    columns: dict[str, Any] = {
        "prompts": ["p"] * len(rows),
        "completions": [r[0] for r in rows],
        "completion_ids": [[7, 0] if r[1] else [7] for r in rows],
        "reference": [r[2] for r in rows],
        "teacher_tools": [r[3] for r in rows],
        "ground_truth": ["5"] * len(rows),
    }
    tokenizer = SimpleNamespace(eos_token="<|im_end|>", eos_token_id=0)
    funcs = trl_component_reward_funcs(preset=preset, gated=True, local=True, tokenizer=tokenizer)
    full = trl_reward_func(preset=preset, local=True, tokenizer=tokenizer)

    async def step() -> list[list[float | None]]:
        return list(await asyncio.gather(full(**columns), *(f(**columns) for f in funcs)))

    reward, *parts = asyncio.run(step())
    sums = [sum(p[i] or 0.0 for p in parts) for i in range(len(rows))]  # TRL's nansum, weights 1.0
    assert sums == pytest.approx(reward, abs=1e-9)
    assert reward[1] == 0.0  # the truncated rollout was gated
