"""Importing the engine pulls in no web, HTTP or ML framework."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("fastapi", "starlette", "uvicorn", "httpx", "torch", "trl", "transformers")


def test_engine_imports_no_framework() -> None:
    code = (
        "import json, sys\n"
        "import mentor_server.scoring, mentor_server.toolsets\n"
        "from mentor_server.scoring import ScoringEngine, resolve_spec\n"
        "ScoringEngine(resolve_spec('flexible'))\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
