"""docs/adapters.md's Python blocks run as written against a live service.

The TRL fragment leaves `url`, `tokenizer` and `get_weather` to the reader; the test supplies
them (the live service, a tiny fast tokenizer, a user tool) and checks what the fragment
promises: the toolset's tools, a reward equal to the service's own, and gated component
functions that sum to it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from doc_blocks import block
from service_process import ServiceProcess

from mentor_client import RewardClient
from mentor_client.adapters.trl_tools import tool_schemas

DOC = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"
ADD = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\nSo the answer is \\boxed{5}.'


def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name
    """
    return "sunny"


def test_the_docs_python_blocks_run_and_do_what_they_say(service: ServiceProcess, client: RewardClient) -> None:
    from trainers_catalogue import corpus

    from mentor_trainer.tiny import build_tokenizer

    reference_block = block("adapters-reference-json").body  # marked `<!-- block: ID -->` in the page
    trl_block = block("adapters-trl-fragment").body
    namespace: dict[str, Any] = {}
    exec(compile(reference_block, str(DOC), "exec"), namespace)  # the doc's own code
    assert json.loads(namespace["row"]["reference"])["calls"][0]["name"] == "add"

    tokenizer = build_tokenizer(corpus(), vocab_size=400)
    namespace = {"url": service.base_url, "tokenizer": tokenizer, "get_weather": get_weather}
    exec(compile(trl_block, str(DOC), "exec"), namespace)  # the doc's own code

    (calculator,) = [t for t in client.toolsets().toolsets if t.name == "calculator"]
    assert sorted(t.__name__ for t in namespace["tools"]) == sorted(s["function"]["name"] for s in calculator.tools)

    ids = tokenizer(ADD, add_special_tokens=False)["input_ids"]
    columns: dict[str, Any] = {
        "prompts": ["p", "p"],
        "completions": [ADD, ADD],
        "completion_ids": [[*ids, tokenizer.eos_token_id], ids],  # finished, truncated
        "ground_truth": ["5", "5"],
        "teacher_tools": [["add"], ["add"]],
    }

    async def step() -> list[list[float | None]]:
        return list(await asyncio.gather(namespace["reward"](**columns), *(f(**columns) for f in namespace["parts"])))

    reward, *parts = asyncio.run(step())
    items = [
        {"completion": ADD, "ground_truth": "5", "teacher_tools": ["add"], "finished": finished}
        for finished in (True, False)
    ]
    expected = client.score(items, preset="flexible", toolset="calculator", eos_tokens=[tokenizer.eos_token])
    assert reward == [r.reward for r in expected.results]
    assert reward[0] is not None and reward[1] is not None and reward[0] > reward[1]  # the truncated one was gated
    assert [sum(p[i] or 0.0 for p in parts) for i in range(2)] == pytest.approx(reward)  # TRL's nansum

    # `mine`: the user's own tool is the toolset, so a call to it is known and schema-valid.
    weather = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\nSunny.'
    weather_ids = [*tokenizer(weather, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    mine = asyncio.run(
        namespace["mine"](
            prompts=["p"],
            completions=[weather],
            completion_ids=[weather_ids],
            ground_truth=["sunny"],
            teacher_tools=[["get_weather"]],
        )
    )
    item = {"completion": weather, "ground_truth": "sunny", "teacher_tools": ["get_weather"], "finished": True}
    schemas = tool_schemas([get_weather])
    own = client.score([item], preset="flexible", tools=schemas, eos_tokens=[tokenizer.eos_token])
    assert mine == [own.results[0].reward]
    assert own.results[0].components["no_hallucination"] == 1.0
