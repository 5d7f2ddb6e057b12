"""The fast path: tests/conftest.py marks process-starting folders `e2e` and model fixtures `slow`,
the markers are registered, and the README gives the command that leaves both out."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST = '.venv/bin/python -m pytest -m "not slow and not e2e"'


def _root_conftest() -> ModuleType:
    # Loaded under its own name: every test folder has a module called `conftest`.
    spec = importlib.util.spec_from_file_location("tests_root_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("path", "fixtures", "marks"),
    [
        ("e2e/test_service_client.py", set(), ["e2e"]),
        ("trainers/test_verl_reward_loop.py", set(), ["e2e"]),
        ("trainer/test_trainer_cli.py", {"tmp_path", "tiny"}, ["slow"]),
        ("trainer/test_trainer_e2e.py", {"warm", "bench"}, ["slow"]),
        ("trainer/test_trainer_signals.py", {"tmp_path", "bench"}, []),
        ("server/scoring/test_parsing.py", {"tmp_path"}, []),
    ],
    ids=["e2e-folder", "trainers-folder", "tiny-model", "warm-start", "benchmark-only", "engine"],
)
def test_marks_by_folder_and_fixture(path: str, fixtures: set[str], marks: list[str]) -> None:
    assert _root_conftest().marks_for(ROOT / "tests" / path, fixtures) == marks


def test_a_test_outside_the_marked_folders_stays_unmarked(request: pytest.FixtureRequest) -> None:
    # This file is in no marked folder and uses no model fixture: the hook leaves it unmarked.
    assert request.node.get_closest_marker("e2e") is None and request.node.get_closest_marker("slow") is None


def test_markers_are_registered_and_the_readme_says_how_to_run_the_fast_part() -> None:
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {m.split(":")[0] for m in pytest_options["markers"]}
    assert {"slow", "e2e"} <= registered and "--strict-markers" in pytest_options["addopts"]
    assert FAST in (ROOT / "README.md").read_text()
    # `make test` (what CI runs) selects no markers: it runs everything.
    test_recipe = re.search(r"^test:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert test_recipe is not None
    runs = re.findall(r"-m pytest(.*)$", test_recipe.group(0), re.M)
    assert runs and not any(re.search(r"(^|\s)-m\s", args) for args in runs)
