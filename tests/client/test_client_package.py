"""The package as shipped: what importing it pulls in, and its documented examples."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import pytest

import mentor_client
from mentor_client import _client
from mentor_client.adapters import trl


def test_importing_the_sdk_pulls_in_no_server_or_ml_framework() -> None:
    code = (
        "import sys, json, mentor_client, mentor_client.adapters.verl;"
        "import mentor_client.adapters.openrlhf_reward_func;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out))
    assert loaded.isdisjoint({"mentor_server", "torch", "trl", "transformers", "fastapi", "numpy"})
    assert {"httpx", "pydantic"} <= loaded


@pytest.mark.parametrize("module", [_client, trl], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names_exist() -> None:
    for name in mentor_client.__all__:
        assert hasattr(mentor_client, name), name
