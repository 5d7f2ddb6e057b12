"""Reward specs: validation names the field, hashes are stable, presets are well formed."""

from __future__ import annotations

import pytest

from mentor_server.scoring import (
    COMPONENT_NAMES,
    RewardSpec,
    ScoringConfigError,
    ScoringEngine,
    get_preset,
    list_presets,
    register_preset,
    resolve_spec,
)

EXPECTED_PRESETS = {
    "sparse": (0.0, 1.0),
    "mentor": (0.0, 1.1),
    "mentor-partial": (0.0, 1.0),
    "mentor-f1": (0.0, 1.1),
    "mentor-no-tool-match": (0.0, 0.8),
    "strict": (0.0, 1.1),
    "flexible": (0.0, 1.0),
    "toolrl": (-3.0, 4.0),
}


def test_builtin_presets_and_ranges() -> None:
    presets = {p.name: p for p in list_presets()}
    assert set(EXPECTED_PRESETS) <= set(presets)
    for name, expected_range in EXPECTED_PRESETS.items():
        assert presets[name].reward_range == pytest.approx(expected_range), name
        assert presets[name].formula
        ScoringEngine(presets[name].spec)  # every preset compiles


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        pytest.param(
            {"components": {"outcome": {"weight": "heavy"}}},
            "components.outcome.weight",
            id="weight-not-number",
        ),
        pytest.param({"components": {"colour": {"weight": 1}}}, "components", id="unknown-component"),
        pytest.param({"components": {}}, "components", id="no-components"),
        pytest.param(
            {"components": {"outcome": {"weight": 1, "wrong_answer_scale": 2}}},
            "components.outcome.wrong_answer_scale",
            id="scale-above-one",
        ),
        pytest.param(
            {"components": {"outcome": {"weight": 1}}, "gates": [{"when": "sometimes", "reward": 0}]},
            "gates[0].when",
            id="unknown-gate",
        ),
        pytest.param(
            {"components": {"outcome": {"weight": 1}}, "surprise": True},
            "surprise",
            id="unknown-top-level-field",
        ),
        pytest.param({"components": {"outcome": {"weight": 1}}, "clip": [1, 0]}, "spec", id="clip-reversed"),
        pytest.param(
            {"components": {"outcome": {"weight": float("nan")}}},
            "components.outcome.weight",
            id="weight-nan",
        ),
        pytest.param({"components": {"outcome": {"weight": 1}}, "bias": float("inf")}, "bias", id="bias-infinite"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict, param: str) -> None:
    with pytest.raises(ScoringConfigError) as info:
        RewardSpec.from_dict(spec)
    assert info.value.param == param
    if param:
        assert param in str(info.value)


@pytest.mark.parametrize(
    ("components", "param"),
    [
        pytest.param(
            {"tool_names": {"weight": 1, "options": {"mode": "vibes"}}},
            "components.tool_names.options.mode",
            id="tool-names-mode",
        ),
        pytest.param(
            {"tool_names": {"weight": 1, "options": {"typo": 1}}},
            "components.tool_names.options.typo",
            id="unknown-option",
        ),
        pytest.param(
            {"efficiency": {"weight": 1, "options": {"slack": -1}}},
            "components.efficiency.options.slack",
            id="negative-slack",
        ),
        pytest.param(
            {"no_hallucination": {"weight": 1, "options": {"mode": "maybe"}}},
            "components.no_hallucination.options.mode",
            id="hallucination-mode",
        ),
    ],
)
def test_invalid_component_options_fail_when_the_engine_compiles(components: dict, param: str) -> None:
    spec = RewardSpec.from_dict({"components": components})
    with pytest.raises(ScoringConfigError) as info:
        ScoringEngine(spec)
    assert info.value.param == param


def test_hash_is_stable_and_ignores_key_order_and_names() -> None:
    a = RewardSpec.from_dict({"components": {"outcome": {"weight": 1}, "format": {"weight": 0.5}}, "name": "a"})
    b = RewardSpec.from_dict({"name": "b", "components": {"format": {"weight": 0.5}, "outcome": {"weight": 1.0}}})
    c = RewardSpec.from_dict({"components": {"outcome": {"weight": 1}, "format": {"weight": 0.4}}})
    assert a.hash == b.hash
    assert a.hash != c.hash
    assert RewardSpec.from_dict(a.to_dict()).hash == a.hash  # round-trips through JSON form


def test_overrides_merge_into_presets() -> None:
    spec = resolve_spec("mentor", overrides={"components": {"tool_names": {"weight": 0.5}}})
    assert spec.components["tool_names"].weight == 0.5
    assert spec.components["tool_names"].options["mode"] == "exact_set"  # untouched keys survive
    assert spec.hash != get_preset("mentor").hash


def test_preset_and_spec_together_is_an_error() -> None:
    with pytest.raises(ScoringConfigError) as info:
        resolve_spec("mentor", spec={"components": {"outcome": {"weight": 1}}})
    assert info.value.param == "spec"


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ScoringConfigError) as info:
        resolve_spec("mentro")
    assert info.value.param == "preset"
    assert "mentor" in str(info.value)


def test_register_preset_cannot_replace_builtins() -> None:
    with pytest.raises(ScoringConfigError):
        register_preset("mentor", {"components": {"outcome": {"weight": 1}}})
    spec = register_preset("test-outcome-only", {"components": {"outcome": {"weight": 1}}}, replace=True)
    assert get_preset("test-outcome-only").hash == spec.hash


def test_component_names_are_the_public_set() -> None:
    # Metric names in users' logs depend on these: changing them needs a note on the issue.
    assert COMPONENT_NAMES == (
        "format",
        "outcome",
        "tool_names",
        "arguments",
        "tool_results",
        "no_hallucination",
        "schema_valid",
        "efficiency",
        "strict_sequence",
        "toolrl_correctness",
    )
