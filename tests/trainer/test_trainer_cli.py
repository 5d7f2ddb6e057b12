"""`mentor-train`: every subcommand documents itself with examples; bad input is one clear line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from mentor_trainer.cli import COMMANDS, build_parser, main, register_command

BUILT_IN = ("tiny-model", "make-data", "sft", "grpo", "eval")


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_command_has_help_with_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert f"mentor-train {name}" in text or "accelerate launch" in text
    assert COMMANDS[name].help


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in BUILT_IN:
        assert name in text


def test_a_command_name_registers_once() -> None:
    build_parser()  # the built-ins are registered

    def configure(p: argparse.ArgumentParser) -> None:
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_command("grpo", help="again", examples=(), configure=configure)(lambda args: 0)


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--data", "{tmp}/missing", "--model", "{tmp}/missing", "--local"],
        ["tiny-model", "--out", "{tmp}/t", "--data", "{tmp}"],
        [
            "sft",
            "--data",
            "{tmp}/missing",
            "--model",
            "{tmp}/missing",
            "--out",
            "{tmp}/o",
            "--plain-torch-overfit",
        ],
        [
            "grpo",
            "--data",
            "{bench}",
            "--model",
            "{tiny}",
            "--out",
            "{tmp}/o",
            "--local",
            "--overrides",
            "[1]",
        ],
        [
            "grpo",
            "--data",
            "{bench}",
            "--model",
            "{tiny}",
            "--out",
            "{tmp}/o",
            "--local",
            "--preset",
            "no-such",
        ],
    ],
    ids=[
        "eval-missing-data",
        "tiny-model-empty-data",
        "sft-missing-data",
        "grpo-bad-overrides",
        "grpo-unknown-preset",
    ],
)
def test_bad_input_is_an_error_line_not_a_traceback(
    argv: list[str], tmp_path: Path, bench: Path, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(tmp=tmp_path, bench=bench, tiny=tiny) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mentor-train {argv[0]}: error:") and "Traceback" not in err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{not json", "Expecting property name"),
        ('["a list"]', "must be a JSON object"),
        ('{"components": {"no_such_component": {"weight": 1.0}}}', "no_such_component"),
    ],
    ids=["not-json", "not-an-object", "unknown-component"],
)
def test_grpo_rejects_a_bad_spec_file_before_loading_anything(
    spec: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.json"
    path.write_text(spec)
    argv = [
        "grpo",
        "--data",
        str(tmp_path),
        "--model",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
        "--local",
    ]
    assert main([*argv, "--spec", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_make_data_command_writes_a_reproducible_benchmark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = ["--train-size", "20", "--test-size", "5", "--ood-size", "4", "--no-parquet", "--json"]
    assert main(["make-data", "--out", str(tmp_path / "a"), "--seed", "3", *sizes]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert main(["make-data", "--out", str(tmp_path / "b"), "--seed", "3", *sizes]) == 0
    assert json.loads(capsys.readouterr().out) == manifest
    assert manifest["splits"]["train"]["rows"] == 20 and manifest["splits"]["ood_dates"]["rows"] == 4
    assert not list((tmp_path / "a").glob("*.parquet"))


def test_tiny_model_command_trains_the_tokenizer_on_given_data(
    tmp_path: Path, bench: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "tiny-model",
        "--out",
        str(tmp_path),
        "--data",
        str(bench),
        "--hidden-size",
        "32",
        "--layers",
        "1",
    ]
    assert main([*argv, "--heads", "2", "--kv-heads", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["hidden_size"] == 32 and summary["parameters"] < 100_000
    assert (tmp_path / "model" / "config.json").exists() and (tmp_path / "tokenizer" / "tokenizer.json").exists()
