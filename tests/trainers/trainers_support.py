"""Helpers shared by the trainer-path tests (a module name no other test folder uses)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def require(module: str) -> Any:
    """Import a trainer module; skip without it, but fail under CI (`make test` installs it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed: run `make trainers` ({exc})")
        pytest.skip(f"{module} is not installed (`make trainers` installs it): {exc}")
