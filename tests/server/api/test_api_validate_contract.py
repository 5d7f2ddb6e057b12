"""`/v1/specs/validate` accepts exactly what `/v1/score` accepts, with the same error and field.

Hypothesis builds reward specs from valid and invalid pieces (weights, gates, every component's
options, the judge's options, misspelt keys, wrong types, out-of-range values) and sends each to
both routes; the two must agree: both 200, or both the same 400 naming the same full path.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentor_server.scoring import COMPONENT_NAMES, GATE_CONDITIONS

ITEM = {"completion": "\\boxed{1}<|im_end|>", "ground_truth": "1"}

# Option values that some component accepts and others refuse, so both answers are exercised.
ANY_VALUE = st.one_of(
    st.booleans(),
    st.integers(-3, 5),
    st.floats(-1.5, 2.5, allow_nan=False),
    st.sampled_from(["f1", "exact_set", "order", "mean", "all", "boxed", "psychic", ""]),
    st.none(),
)
OPTION_KEYS = {
    "format": ["mode"],
    "outcome": ["answer_from", "judge"],
    "tool_names": ["mode", "count_invalid"],
    "arguments": ["fuzzy_weight", "coercion_credit", "key_weight", "rel_tol", "string_normalize"],
    "tool_results": ["execute_missing", "values"],
    "no_hallucination": [],
    "schema_valid": [],
    "efficiency": ["slack"],
    "strict_sequence": [],
    "toolrl_correctness": [],
}
JUDGE_KEYS = ["rel_tol", "abs_tol", "float_rounding", "use_math_verify", "timeout_s", "cache_size", "tolerance"]
MATCH_KEYS = ["fuzzy_weight", "coercion_credit", "key_weight", "rel_tol", "fuzzy", "typo_option"]


@st.composite
def options(draw: st.DrawFn, component: str) -> dict[str, Any]:
    keys = OPTION_KEYS[component] + ["misspelt_option"]
    chosen = draw(st.lists(st.sampled_from(keys), max_size=2, unique=True))
    out: dict[str, Any] = {}
    for key in chosen:
        if key == "judge":
            out[key] = draw(st.dictionaries(st.sampled_from(JUDGE_KEYS), ANY_VALUE, max_size=2))
        elif key == "values":
            out[key] = draw(st.dictionaries(st.sampled_from(MATCH_KEYS), ANY_VALUE, max_size=2))
        else:
            out[key] = draw(ANY_VALUE)
    return out


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(COMPONENT_NAMES), min_size=1, max_size=3, unique=True))
    components = {}
    for name in names:
        component: dict[str, Any] = {"weight": draw(st.floats(-1, 2, allow_nan=False))}
        if draw(st.booleans()):
            component["options"] = draw(options(name))
        if draw(st.integers(0, 4)) == 0:
            component["wrong_answer_scale"] = draw(st.floats(-0.5, 1.5, allow_nan=False))
        components[name] = component
    spec: dict[str, Any] = {"components": components}
    if draw(st.booleans()):
        spec["gates"] = [{"when": draw(st.sampled_from([*GATE_CONDITIONS, "never"])), "reward": draw(st.floats(0, 1))}]
    if draw(st.integers(0, 5)) == 0:
        spec["eos_tokens"] = draw(st.sampled_from([["</s>"], [], [""], "</s>"]))
    return spec


def _answer(response: Any) -> tuple[int, str | None, str | None]:
    body = response.json()
    if response.status_code == 200:
        return (200, None, None)
    return (response.status_code, body["error"]["type"], body["error"]["param"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs())
def test_validate_and_score_agree_on_every_spec(client: TestClient, spec: dict[str, Any]) -> None:
    validated = client.post("/v1/specs/validate", json={"spec": spec})
    scored = client.post("/v1/score", json={"spec": spec, "items": [ITEM]})
    assert _answer(validated) == _answer(scored), (spec, validated.text, scored.text)
    if scored.status_code == 200:
        assert validated.json()["spec_hash"] == scored.json()["spec_hash"]
        assert scored.json()["results"][0]["error"] is None


def test_option_errors_name_their_full_path(client: TestClient) -> None:
    cases = {
        "components.tool_results.options.values.fuzzy_weight": {
            "tool_results": {"weight": 1, "options": {"values": {"fuzzy_weight": 2}}}
        },
        "components.outcome.options.judge.rel_tol": {"outcome": {"weight": 1, "options": {"judge": {"rel_tol": -1}}}},
        "components.tool_names.options.mood": {"tool_names": {"weight": 1, "options": {"mood": "f1"}}},
        "components.tool_names.options.count_invalid": {
            "tool_names": {"weight": 1, "options": {"count_invalid": "no"}}
        },
    }
    for param, components in cases.items():
        for route, body in (
            ("/v1/specs/validate", {"spec": {"components": components}}),
            ("/v1/score", {"spec": {"components": components}, "items": [ITEM]}),
        ):
            response = client.post(route, json=body)
            assert response.status_code == 400, (route, response.text)
            assert response.json()["error"]["param"] == param, (route, response.text)
