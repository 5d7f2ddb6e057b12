"""Marks tests `e2e` and `slow` by where they live and what they use, so the quick part runs alone.

`.venv/bin/python -m pytest -m "not slow and not e2e"` is the fast path (the README's); `make test`
and CI run everything. Marking here rather than in each file keeps new tests in a process-starting
folder, or on a model-training fixture, out of the fast path without anyone remembering to mark them.
Marks written in a test file stay; this only adds.

- `e2e`: every test in a folder whose tests start real processes (the service under uvicorn, the
  trainers' own code, Chromium, Ray, PostgreSQL).
- `slow`: every test that uses a fixture building or training a model (the tiny model and its
  tokenizer, the warm start, the toy experiment, the demo), which costs seconds to minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
E2E_FOLDERS = frozenset({"e2e", "trainers", "browser", "ray", "records_pg"})
MODEL_FIXTURES = frozenset({"tiny", "tokenizer", "warm", "grpo_local", "toy", "demo", "tiny_model_dir"})


def marks_for(path: Path, fixtures: set[str] | frozenset[str]) -> list[str]:
    """The marks a test at `path` using `fixtures` gets from this file."""
    marks = []
    try:
        top = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        top = ""
    if top in E2E_FOLDERS:
        marks.append("e2e")
    if MODEL_FIXTURES & set(fixtures):
        marks.append("slow")
    return marks


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for name in marks_for(Path(str(item.path)), fixtures):
            if item.get_closest_marker(name) is None:
                item.add_marker(getattr(pytest.mark, name))
