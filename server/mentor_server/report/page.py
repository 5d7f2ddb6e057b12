"""The dashboard page: one self-contained HTML document, the same for `/ui` and `mentor-reward report`.

Everything the page needs is inside it: the summary as a JSON data block, Chart.js (vendored
from its npm package into `static/`, MIT licence beside it), the page's own script and style.
A Content-Security-Policy in the page allows exactly those inline scripts and that style (by
their SHA-256) and nothing from anywhere else (no network, no other script), so the page
works offline and a rollout's text, which may hold any markup, can never run as code (the
script shows it with `textContent` as well).

On a service with API keys a browser's navigation carries no bearer header, so `/ui` answers
the same page without its data (`render_dashboard_shell`): it asks for the key, keeps it in the
tab's sessionStorage, and loads `dashboard_json` from the guarded data route with the key in the
`Authorization` header. Only that page's policy allows a request, and only to its own origin.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import time
from functools import cache
from importlib.resources import files
from typing import Any

CHART_JS = "chart.umd.min.js"
"""Chart.js 4.6.1, `dist/chart.umd.min.js` of the npm package `chart.js` (MIT)."""

_MAX_DEPTH = 40
"""Sampled items nested deeper than this are cut (the page shows the cut, not a stack overflow)."""


@cache
def _asset(name: str) -> str:
    text = (files("mentor_server.report") / "static" / name).read_text(encoding="utf-8")
    # A source-map comment would point the browser's tools at a file the page does not carry.
    return "\n".join(line for line in text.splitlines() if not line.startswith("//# sourceMappingURL="))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` with what JSON.parse refuses made printable: NaN/Infinity become strings, nesting past
    `_MAX_DEPTH` a note, and keys strings (a record's item is whatever the trainer sent)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict | list | tuple) and depth >= _MAX_DEPTH:
        return f"(nested deeper than {_MAX_DEPTH} levels: cut)"
    if isinstance(value, dict):
        return {str(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, depth + 1) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _data_block(summary: dict[str, Any]) -> str:
    # ensure_ascii keeps lone surrogates (a model can emit one) as escapes JSON.parse accepts;
    # escaping "<" keeps "</script>" in a rollout from ending the data block.
    text = json.dumps(json_safe(summary), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def _subtitle(summary: dict[str, Any], source: str) -> str:
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"{source} · generated {generated} · {summary.get('n_records', 0):,} records"


def _render(*, data: str, subtitle: str, data_url: str | None) -> str:
    chart_js = _asset(CHART_JS)
    page_js = _asset("dashboard.js")
    style = _asset("dashboard.css")
    # The page with its data embedded makes no request at all; the shell fetches its data from
    # its own origin and nowhere else.
    connect = "'none'" if data_url is None else "'self'"
    policy = (
        f"default-src 'none'; script-src {_sha256(chart_js)} {_sha256(page_js)}; style-src {_sha256(style)}; "
        f"img-src data:; connect-src {connect}; base-uri 'none'; form-action 'none'"
    )
    return _TEMPLATE.format(
        policy=html.escape(policy, quote=True),
        subtitle=html.escape(subtitle),
        data_url="" if data_url is None else f' data-load="{html.escape(data_url, quote=True)}"',
        style=style,
        data=data,
        chart_js=chart_js,
        page_js=page_js,
    )


def render_dashboard(summary: dict[str, Any], *, source: str) -> str:
    """The page for a summary (`summarize_records`); `source` says where the records came from."""
    return _render(data=_data_block(summary), subtitle=_subtitle(summary, source), data_url=None)


def render_dashboard_shell(*, data_url: str) -> str:
    """The same page without data: it asks for the API key and loads `data_url` (`dashboard_json`)
    with it. It holds nothing from the record, so it may be served without a key."""
    return _render(data="null", subtitle="an API key is needed to show the score record", data_url=data_url)


def dashboard_json(summary: dict[str, Any], *, source: str) -> str:
    """What the shell loads: `{"subtitle": ..., "summary": ...}`, the data block of `render_dashboard`."""
    return '{"subtitle":' + json.dumps(_subtitle(summary, source)) + ',"summary":' + _data_block(summary) + "}"


# The layout: ids are what dashboard.js fills in. Braces are doubled for str.format.
_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MENTOR reward dashboard</title>
<style>{style}</style>
</head>
<body{data_url}>
<header>
<h1>MENTOR reward dashboard</h1>
<p id="subtitle">{subtitle}</p>
<button type="button" id="key-forget" hidden>Forget the API key</button>
</header>
<main>
<section class="card wide" id="key-prompt" hidden><h2>API key</h2>
<form id="key-form" autocomplete="off"><label>This service needs an API key to show its score record
<input type="password" id="key-input" required autocomplete="off" spellcheck="false"></label>
<button type="submit">Show the dashboard</button></form>
<p class="note">The key stays in this browser tab (sessionStorage) and is sent only as an
<code>Authorization: Bearer</code> header to this service; closing the tab forgets it.</p>
<p class="error" id="key-message" role="alert"></p></section>
<section class="card wide" id="load-status" hidden></section>
<section class="card wide"><h2>All runs</h2><div class="stats" id="overview"></div></section>
<section class="card wide"><h2>Mean reward over steps, per run</h2>
<div class="chart"><canvas id="chart-reward" aria-label="mean reward per step and run"></canvas></div></section>
<section class="card wide per-run"><div class="controls"><label>Run <select id="run"></select></label></div>
<div class="stats" id="run-stats"></div><p class="note" id="run-notes"></p></section>
<section class="card per-run"><h2>Reward and component means over steps</h2>
<div class="chart"><canvas id="chart-components" aria-label="component means per step"></canvas></div></section>
<section class="card per-run"><h2>Reward distribution per step</h2>
<div class="chart"><canvas id="chart-distribution" aria-label="reward quantiles per step"></canvas></div>
<p class="note">Median, 25–75% band (dark) and 10–90% band (light) of the scored rollouts' rewards.</p></section>
<section class="card per-run"><h2>Reward histogram</h2>
<div class="controls"><input type="range" id="hist-step" min="0" max="0" value="0" aria-label="step">
<label><input type="checkbox" id="hist-all"> all steps</label><span id="hist-label"></span></div>
<div class="chart"><canvas id="chart-histogram" aria-label="reward histogram"></canvas></div></section>
<section class="card per-run"><h2>Tool calls over steps</h2>
<div class="chart"><canvas id="chart-tools" aria-label="tool-call and invalid-tool rates"></canvas></div>
<p class="note" id="tools-note"></p></section>
<section class="card per-run"><h2>Most frequent invented tool names</h2>
<div class="chart"><canvas id="chart-invented" aria-label="invented tool names"></canvas></div></section>
<section class="card per-run"><h2>Teacher vs student tool usage</h2>
<div class="chart"><canvas id="chart-usage" aria-label="tool usage, teacher and student"></canvas></div>
<p class="note" id="usage-note"></p></section>
<section class="card wide per-run"><h2>Sampled rollouts</h2>
<div class="controls"><label>Show <select id="sample-filter">
<option value="all">a sample (random, extremes, errors, invented tools)</option>
<option value="low">lowest rewards first</option><option value="high">highest rewards first</option>
<option value="errors">errors only</option><option value="invented">invented tools only</option>
</select></label><span class="note" id="sample-count"></span></div>
<div class="samples"><div class="sample-list"><table><thead><tr><th>step</th><th>reward</th><th></th></tr></thead>
<tbody id="sample-rows"></tbody></table></div><div id="sample-detail"></div></div></section>
</main>
<script type="application/json" id="dashboard-data">{data}</script>
<script>{chart_js}</script>
<script>{page_js}</script>
</body>
</html>
"""
