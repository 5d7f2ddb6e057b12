"""Judging BFCL outputs twice: our scoring engine against the possible answers, and BFCL's own checker.

For one model answer to a BFCL single-turn case (`BfclOutput`: the message, the calls with BFCL's
names), `score_output` scores the calls with our engine (the `bfcl-eval` spec below: optimally
paired `arguments` against the possible answers, with `tool_names`, `schema_valid` and
`no_hallucination` beside it; the functions' declared types as the schema), and `bfcl_verdict`
asks BFCL's `ast_checker` (or, for (ir)relevance, BFCL's runner rule) about the same calls.
`judge_category` pools a category's outputs into a `CategoryTally`, and `bfcl_table` writes the
per-category table. Java and JavaScript values arrive as source text, as BFCL sends their
parameters; `typed_arguments` reads scalars and JSON containers back for our engine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .bfcl_data import BfclCase, Checker, checker_verdict, is_relevance_category, relevance_verdict

if TYPE_CHECKING:
    from mentor_client.adapters.trl_tools import ToolExecutor

# The reward our engine scores BFCL outputs with: the argument match against the possible answers is
# the reward; names, schema validity and hallucinated names are logged beside it.
BFCL_SPEC: dict[str, Any] = {
    "name": "bfcl-eval",
    "description": "BFCL single-turn: optimally paired arguments against the possible answers.",
    "gates": [],
    "none_policy": "renormalize",
    "components": {
        "arguments": {"weight": 1.0},
        "tool_names": {"weight": 0.0, "options": {"mode": "multiset_f1"}},
        "schema_valid": {"weight": 0.0},
        "no_hallucination": {"weight": 0.0},
    },
}
BFCL_COMPONENTS = ("tool_names", "arguments", "schema_valid", "no_hallucination")


_INT = re.compile(r"[-+]?\d+[lL]?")
_BOOLEAN_TYPES = frozenset({"boolean", "bool", "Boolean"})
_INTEGER_TYPES = frozenset({"integer", "int", "long", "short", "byte", "Bigint"})
_FLOAT_TYPES = frozenset({"float", "double", "number"})
_CONTAINER_TYPES = frozenset(
    {"array", "list", "tuple", "dict", "object", "ArrayList", "Array", "List", "HashMap", "Hashtable", "Map"}
)
# For our engine's schema check: BFCL's type names of every language as JSON schema ("any": no constraint).
_SCHEMA_TYPES = {
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "Bigint": "integer",
    "float": "number",
    "double": "number",
    "number": "number",
    "string": "string",
    "String": "string",
    "char": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "Boolean": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "ArrayList": "array",
    "Array": "array",
    "List": "array",
    "dict": "object",
    "object": "object",
    "HashMap": "object",
    "Hashtable": "object",
    "Map": "object",
}


def _schema(prop: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k not in ("type", "properties", "items")}
    kind = _SCHEMA_TYPES.get(str(prop.get("type")))
    if kind is not None:
        out["type"] = kind
    if isinstance(prop.get("properties"), dict):
        out["properties"] = {k: _schema(v) for k, v in prop["properties"].items() if isinstance(v, dict)}
    if isinstance(prop.get("items"), dict):
        out["items"] = _schema(prop["items"])
    return out


def scoring_tools(case: BfclCase) -> list[dict[str, Any]]:
    """The case's functions as our engine checks them: BFCL's own names and declared types."""
    tools = []
    for function in case.functions:
        params = dict(function.get("parameters") or {})
        params["type"] = "object"
        params["properties"] = {k: _schema(v) for k, v in (params.get("properties") or {}).items()}
        tools.append({"type": "function", "function": {"name": function["name"], "parameters": params}})
    return tools


def typed_arguments(case: BfclCase, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Java/JavaScript arguments arrive as source text (their schema says string); our engine
    compares values, so scalars and JSON containers are read back by the declared type. Text that
    does not read stays text (BFCL's checker parses more Java/JS syntax than this)."""
    if case.language == "python":
        return arguments
    declared = {f["name"]: (f.get("parameters") or {}).get("properties") or {} for f in case.functions}.get(name, {})
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        kind = str((declared.get(key) or {}).get("type", "any"))
        out[key] = _read_typed(value, kind) if isinstance(value, str) else value
    return out


def _read_typed(text: str, kind: str) -> Any:
    stripped = text.strip()
    if kind in _BOOLEAN_TYPES and stripped in ("true", "false"):
        return stripped == "true"
    if kind in _INTEGER_TYPES and _INT.fullmatch(stripped):
        return int(stripped.rstrip("lL"))
    if kind in _FLOAT_TYPES:
        try:
            return float(stripped.rstrip("fFdD"))
        except ValueError:
            return text
    if kind in _CONTAINER_TYPES:
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


@dataclass
class BfclOutput:
    case: BfclCase
    message: dict[str, Any] | None = None
    finish_reason: str | None = None
    error: str | None = None
    content: str = ""  # the turn's prose (calls removed)
    calls: list[dict[str, Any]] = field(default_factory=list)  # name (BFCL's), arguments, error, raw


def score_output(output: BfclOutput, runner: ToolExecutor) -> dict[str, Any]:
    """Our engine's components for one output (an `error` entry when the engine cannot score it)."""
    case = output.case
    good = [c for c in output.calls if c["error"] is None and c["name"]]
    bad = [c for c in output.calls if not (c["error"] is None and c["name"])]
    content = "\n".join([output.content, *(f"<tool_call>{c['raw']}</tool_call>" for c in bad)]).strip()
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if good:
        message["tool_calls"] = [
            {
                "type": "function",
                "function": {"name": c["name"], "arguments": typed_arguments(case, c["name"], c["arguments"])},
            }
            for c in good
        ]
    calls = [{"name": name, "arguments": params} for call in (case.ground_truth or []) for name, params in call.items()]
    item = {"completion": [message], "reference": {"calls": calls, "possible_answers": True}, "finished": True}
    from mentor_client.exceptions import BadRequestError

    # Some live_irrelevance cases offer no function at all: then there is no schema to check against.
    tools = scoring_tools(case) or None
    try:
        response = runner.backend.score([item], spec=BFCL_SPEC, tools=tools)
    except BadRequestError as exc:
        # The engine refused this case's input (e.g. a function doc it cannot compile): that case is
        # a scoring error in the table, the run goes on. An unreachable service still stops the run.
        return {"error": {"type": exc.error.type, "message": exc.error.message, "param": exc.error.param}}
    result: dict[str, Any] = response.results[0].model_dump(mode="json")
    return result


def our_verdict(category: str, components: dict[str, Any]) -> bool:
    names = components.get("tool_names")
    if is_relevance_category(category):
        # Against an empty reference: 1.0 when the model called nothing, 0.0 when it called.
        return names == 1.0 if "irrelevance" in category else names == 0.0
    return components.get("arguments") == 1.0 and names == 1.0


def bfcl_verdict(output: BfclOutput, check: Checker) -> tuple[bool, str]:
    case = output.case
    malformed = any(c["error"] is not None or not c["name"] for c in output.calls)
    if is_relevance_category(case.category):
        # BFCL decodes the whole output or nothing: one unreadable call means no decodable call.
        return relevance_verdict(case.category, 0 if malformed else len(output.calls))
    if malformed:
        return False, "ast_decoder:decoder_failed: a call that does not decode"
    if not output.calls:
        return False, "ast_decoder:decoder_failed: no function call"
    assert case.ground_truth is not None
    calls = [(str(c["name"]), c["arguments"]) for c in output.calls]
    return checker_verdict(check, case.functions, case.ground_truth, case.category, calls)


@dataclass
class CategoryTally:
    n: int = 0
    request_errors: int = 0
    scoring_errors: int = 0
    judged: int = 0
    called: int = 0
    bfcl_pass: int = 0
    ours_pass: int = 0
    agree: int = 0
    components: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def metrics(self) -> dict[str, Any]:
        def share(count: int) -> float | None:
            return count / self.judged if self.judged else None

        means = {
            name: (sum(values) / len(values) if values else None)
            for name in BFCL_COMPONENTS
            for values in [self.components.get(name, [])]
        }
        return {
            "n": self.n,
            "request_errors": self.request_errors,
            "scoring_errors": self.scoring_errors,
            "judged": self.judged,
            "call_rate": share(self.called),
            "bfcl_accuracy": share(self.bfcl_pass),
            "our_accuracy": share(self.ours_pass),
            "agreement": share(self.agree),
            **means,
            "seconds": round(self.seconds, 2),
        }

    def add(self, other: CategoryTally) -> None:
        for name in ("n", "request_errors", "scoring_errors", "judged", "called", "bfcl_pass", "ours_pass", "agree"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, values in other.components.items():
            self.components.setdefault(name, []).extend(values)
        self.seconds += other.seconds


def judge_category(
    outputs: list[BfclOutput], runner: ToolExecutor, check: Checker
) -> tuple[CategoryTally, list[dict[str, Any]]]:
    tally = CategoryTally(n=len(outputs))
    raw: list[dict[str, Any]] = []
    for output in outputs:
        case = output.case
        entry: dict[str, Any] = {
            "id": case.id,
            "category": case.category,
            "finish_reason": output.finish_reason,
            "message": output.message,
            "calls": output.calls,
        }
        if output.error is not None:
            tally.request_errors += 1
            raw.append({**entry, "error": output.error})
            continue
        score = score_output(output, runner)
        bfcl_ok, bfcl_reason = bfcl_verdict(output, check)
        entry["bfcl"] = {"valid": bfcl_ok, "error": bfcl_reason}
        if score.get("error"):
            tally.scoring_errors += 1
            raw.append({**entry, "score": score, "error": f"scoring: {score['error']}"})
            continue
        components = score.get("components") or {}
        ours_ok = our_verdict(case.category, components)
        tally.judged += 1
        tally.called += bool(output.calls)
        tally.bfcl_pass += bfcl_ok
        tally.ours_pass += ours_ok
        tally.agree += ours_ok == bfcl_ok
        for name in BFCL_COMPONENTS:
            if components.get(name) is not None:
                tally.components.setdefault(name, []).append(float(components[name]))
        raw.append({**entry, "score": score, "ours": {"valid": ours_ok}, "agree": ours_ok == bfcl_ok})
    return tally, raw


_TABLE_COLUMNS = (
    ("n", "n"),
    ("request_errors", "request errors"),
    ("scoring_errors", "scoring errors"),
    ("call_rate", "call rate"),
    ("bfcl_accuracy", "BFCL accuracy (ast_checker)"),
    ("our_accuracy", "our accuracy"),
    ("agreement", "verdict agreement"),
    ("tool_names", "tool_names"),
    ("arguments", "arguments"),
    ("schema_valid", "schema_valid"),
    ("no_hallucination", "no_hallucination"),
    ("seconds", "seconds"),
)


def bfcl_table(categories: dict[str, dict[str, Any]]) -> str:
    """A Markdown table, one row per category (the last one, `all`, pools every judged case)."""
    head = "| category | " + " | ".join(label for _, label in _TABLE_COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(_TABLE_COLUMNS)
    lines = [head, rule]
    for name, m in categories.items():
        cells = []
        for key, _ in _TABLE_COLUMNS:
            value = m.get(key)
            cells.append("-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value))
        label = f"**{name}**" if name == "all" else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
