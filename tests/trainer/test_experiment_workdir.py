"""What `mentor-train experiment` keeps of an earlier run's workdir: `--reuse-sft` keeps data, base
model and checkpoint A; `--reuse-base` keeps data and base model and trains checkpoint A again (so a
study can change the SFT length on the same benchmark and decoder); neither flag starts from nothing.
The decision is `prepare_workdir`, tested here on a workdir laid out as the stages write it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mentor_trainer.experiment import options_from_args, prepare_workdir, reuse_base_model

ARGS: dict[str, Any] = {
    "size": "toy", "out": None, "workdir": None, "methods": None, "with_strict": False, "seeds": "1",
    "budget_s": None, "grpo_steps": None, "sft_seconds": None, "eval_rows": None, "service_workers": None,
    "data_seed": 0, "keep": False, "command": "",
}  # fmt: skip


def earlier_run(work: Path) -> None:
    """The folders a finished run with --keep leaves (contents reduced to the files that are read)."""
    splits = {name: {"rows": 1, "sha256": "x"} for name in ("train", "ood_units", "ood_combo", "test", "ood_long")}
    (work / "data").mkdir(parents=True)
    (work / "data" / "manifest.json").write_text(json.dumps({"seed": 0, "splits": splits}))
    (work / "base").mkdir()
    (work / "base" / "tiny-model.json").write_text(json.dumps({"parameters": 7, "vocab_size": 5, "config": {}}))
    (work / "sft").mkdir()
    (work / "sft" / "run.json").write_text(json.dumps({"steps": 3}))
    (work / "grpo-sparse-s1").mkdir()
    (work / "service.log").write_text("log")
    (work / "notes.txt").write_text("the user's")


def options(work: Path, reuse_sft: bool = False, reuse_base: bool = False) -> Any:
    return replace(options_from_args(**ARGS), workdir=work, reuse_sft=reuse_sft, reuse_base=reuse_base)


@pytest.mark.parametrize(
    ("flags", "kept", "left"),
    [
        ({}, "", {"notes.txt"}),
        ({"reuse_sft": True}, "sft", {"data", "base", "sft", "service.log", "notes.txt"}),
        ({"reuse_base": True}, "base", {"data", "base", "service.log", "notes.txt"}),
    ],
    ids=["fresh", "reuse-sft", "reuse-base"],
)
def test_what_each_flag_keeps(tmp_path: Path, flags: dict[str, bool], kept: str, left: set[str]) -> None:
    earlier_run(tmp_path)
    assert prepare_workdir(options(tmp_path, **flags)) == kept
    assert {p.name for p in tmp_path.iterdir()} == left


def test_reuse_base_reads_the_kept_splits_in_the_papers_order(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    prepare_workdir(options(tmp_path, reuse_base=True))
    data, manifest, splits, built = reuse_base_model(options(tmp_path, reuse_base=True))
    assert data == tmp_path / "data"
    assert splits == ["test", "ood_long", "ood_combo", "ood_units"]
    assert built["parameters"] == 7 and manifest["seed"] == 0


def test_reuse_base_without_a_base_model_is_an_error(tmp_path: Path) -> None:
    earlier_run(tmp_path)
    (tmp_path / "base" / "tiny-model.json").unlink()
    with pytest.raises(FileNotFoundError, match="--reuse-base"):
        prepare_workdir(options(tmp_path, reuse_base=True))
    assert (tmp_path / "sft" / "run.json").is_file()  # nothing was removed before the error


def test_reuse_sft_and_reuse_base_together_name_both_flags() -> None:
    with pytest.raises(ValueError, match=r"--reuse-sft.*--reuse-base"):
        options_from_args(**{**ARGS, "reuse_sft": True, "reuse_base": True})
