"""Fixtures for running the trainers' own reward code against a live reward service.

verl 0.9.1 and OpenRLHF 0.11.2 are installed by `make test` (tests/trainers/requirements*.txt,
without their GPU dependencies). When they are missing the tests skip, except under CI, where
a missing trainer is a failure: CI must prove the contracts, not skip them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from service_process import ServiceProcess, free_port, service_env

from mentor_client import RewardClient


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One real `mentor-reward serve` for the trainer tests, recording every scored item."""
    tmp = tmp_path_factory.mktemp("service")
    env = service_env(workers="1", record_backend="sqlite", record_path=str(tmp / "scores.sqlite3"))
    proc = ServiceProcess(free_port(), env, tmp / "service.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(service: ServiceProcess) -> Iterator[RewardClient]:
    with RewardClient(service.base_url) as c:
        yield c


@pytest.fixture(scope="session")
def tokenizer_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny tokenizers saved to disk, as verl loads them: ChatML EOS and a `</s>` EOS."""
    from trainers_catalogue import corpus

    from mentor_trainer.tiny import build_tokenizer

    out: dict[str, Path] = {}
    for name, eos in (("chatml", None), ("llama", "</s>")):
        tokenizer = build_tokenizer(corpus(), vocab_size=400)
        if eos is not None:
            tokenizer.add_special_tokens({"eos_token": eos})
        path = tmp_path_factory.mktemp(f"tok-{name}")
        tokenizer.save_pretrained(path)
        out[name] = path
    return out
