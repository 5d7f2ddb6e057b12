"""The reward dashboard: score records summarised into one self-contained HTML page.

`summarize_records` (or `RecordSummary`, fed incrementally) reads records in one pass (per run
and step: reward and component means, reward quantiles and histograms, tool-call and
invalid-tool rates; per run: invented tool names, teacher-vs-student tool usage, a sample of
rollouts next to their teacher traces);
`render_dashboard` lays that out as a page with its charts' library inside it. The service
serves the page at `/ui`; `mentor-reward report --records PATH --out report.html` writes the
same page to a file that opens offline. On a service with API keys `/ui` serves the same page
without its data (`render_dashboard_shell`), which asks for the key and then loads
`dashboard_json` from the service.

    >>> from mentor_server.report import build_dashboard
    >>> page = build_dashboard([], source="an empty run")
    >>> page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .page import dashboard_json, render_dashboard, render_dashboard_shell
from .summary import RecordSummary, Row, summarize_records

__all__ = [
    "RecordSummary",
    "build_dashboard",
    "dashboard_json",
    "render_dashboard",
    "render_dashboard_shell",
    "summarize_records",
]


def build_dashboard(rows: Iterable[Row], *, source: str, toolset: str | None = None) -> str:
    """The dashboard page for score records (`toolset`: see `summarize_records`)."""
    summary: dict[str, Any] = summarize_records(rows, toolset=toolset)
    return render_dashboard(summary, source=source)
