"""BFCL's single-turn data and its own checker, read from the `bfcl-eval` wheel without installing it.

The Berkeley Function-Calling Leaderboard ships its prompts, function docs and possible answers
inside the `bfcl-eval` package, whose dependencies (every model vendor's SDK) are far too heavy to
install for a few JSON files. So the wheel is downloaded once with `pip download --no-deps` into a
cache folder and read as a zip: `load_cases` gives a category's cases, `openai_tools` turns their
function docs into the OpenAI `tools=` a chat endpoint takes (the way BFCL's function-calling
handlers do: BFCL type names mapped to JSON schema, Java and JavaScript parameters sent as strings,
dots in names replaced), and `load_bfcl_checker` imports BFCL's `ast_checker` straight from the
zip (zipimport; its model-handler registry stubbed out) as an independent judge of the same calls.
`bench/bfcl_agreement.py` and `mentor-train eval --endpoint` both use this one implementation.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import types
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BFCL_VERSION = "2026.3.23"
# BFCL v4's single-turn categories in its own order (non-live, then live): the AST categories are
# judged against possible answers, the (ir)relevance ones by whether the model called at all.
SINGLE_TURN_CATEGORIES = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
    "live_relevance",
)
_DATA = "bfcl_eval/data"

# BFCL's type names (Python, Java and JavaScript flavoured) → JSON schema types; others are strings.
_JSON_TYPES = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
}


def language_of(category: str) -> str:
    """The language BFCL judges a category's calls in: java, javascript or python."""
    if category.endswith("_java"):
        return "java"
    if category.endswith("_javascript"):
        return "javascript"
    return "python"


def is_relevance_category(category: str) -> bool:
    """(Ir)relevance categories have no possible answers: they ask whether the model called at all."""
    return category.endswith("relevance")


# ---------------------------------------------------------------------------- the wheel
def default_cache_dir() -> Path:
    """$MENTOR_BFCL_CACHE, else ~/.cache/mentor-reward/bfcl."""
    env = os.environ.get("MENTOR_BFCL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mentor-reward" / "bfcl"


def wheel_path(cache_dir: str | Path | None = None, version: str = BFCL_VERSION) -> Path:
    """The `bfcl-eval` wheel in `cache_dir`, downloaded (no dependencies) when absent.

    The pinned `version` is tried first, then the newest release. Raises RuntimeError when pip
    cannot fetch it (offline, no index), saying where a wheel can be put by hand.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    found = sorted(folder.glob(f"bfcl_eval-{version}-*.whl")) or sorted(folder.glob("bfcl_eval-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder)]
    errors = []
    for requirement in (f"bfcl-eval=={version}", "bfcl-eval"):
        done = subprocess.run([*base, requirement], capture_output=True, text=True)
        if done.returncode == 0:
            break
        errors.append(done.stderr.strip()[-500:])
    found = sorted(folder.glob("bfcl_eval-*.whl"))
    if not found:
        raise RuntimeError(
            f"could not download the bfcl-eval wheel into {folder} ({errors[-1] if errors else 'no wheel'}); "
            f"put bfcl_eval-{version}-py3-none-any.whl there by hand (pip download --no-deps bfcl-eval)"
        )
    return found[-1]


def read_jsonl(archive: zipfile.ZipFile, member: str) -> list[dict[str, Any]]:
    """One of BFCL's data files (JSON lines, despite the .json name)."""
    return [json.loads(line) for line in archive.read(member).decode("utf-8").splitlines() if line.strip()]


def categories_in_wheel(wheel: Path) -> list[str]:
    """The single-turn categories whose prompt file this wheel has, in BFCL's order."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    return [c for c in SINGLE_TURN_CATEGORIES if f"{_DATA}/BFCL_v4_{c}.json" in names]


# ---------------------------------------------------------------------------- cases
@dataclass(frozen=True, slots=True)
class BfclCase:
    """One single-turn case: the conversation, BFCL's function docs, and (AST categories) the
    possible answers: per call, `{name: {param: [acceptable values]}}` with `""` = may be left out."""

    id: str
    category: str
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    ground_truth: list[dict[str, dict[str, list[Any]]]] | None

    @property
    def language(self) -> str:
        return language_of(self.category)


def load_cases(wheel: Path, category: str, limit: int | None = None) -> list[BfclCase]:
    """The first `limit` cases of `category` (all when None). Unknown categories raise ValueError."""
    if category not in SINGLE_TURN_CATEGORIES:
        raise ValueError(f"unknown BFCL single-turn category {category!r}; known: {', '.join(SINGLE_TURN_CATEGORIES)}")
    with zipfile.ZipFile(wheel) as archive:
        member = f"{_DATA}/BFCL_v4_{category}.json"
        if member not in archive.namelist():
            raise ValueError(f"{wheel.name} has no {category!r} data ({member})")
        questions = read_jsonl(archive, member)[:limit]
        answers: dict[str, Any] = {}
        if not is_relevance_category(category):
            answer_file = f"{_DATA}/possible_answer/BFCL_v4_{category}.json"
            answers = {a["id"]: a["ground_truth"] for a in read_jsonl(archive, answer_file)}
    cases = []
    for q in questions:
        turns = q["question"]
        if len(turns) != 1:
            raise ValueError(f"{q['id']}: a single-turn case with {len(turns)} turns")
        truth = None if is_relevance_category(category) else answers[q["id"]]
        cases.append(BfclCase(q["id"], category, list(turns[0]), list(q["function"]), truth))
    return cases


# ---------------------------------------------------------------------------- function docs as tools
def _json_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema with JSON schema type names, recursively (unknown types: string)."""
    out = dict(prop)
    out["type"] = _JSON_TYPES.get(str(prop.get("type", "string")), "string")
    if isinstance(prop.get("properties"), dict):
        out["properties"] = {k: _json_schema(v) for k, v in prop["properties"].items() if isinstance(v, dict)}
    if isinstance(prop.get("items"), dict):
        out["items"] = _json_schema(prop["items"])
    return out


def _as_string_parameter(prop: dict[str, Any], language: str) -> dict[str, Any]:
    """Java and JavaScript arguments travel as source text: the schema says string and the
    description keeps the declared type (and the element or entry schema), which BFCL's checker
    then parses back from the string."""
    label = "Java" if language == "java" else "JavaScript"
    kind = str(prop.get("type", "any"))
    note = f" (a {label} value of type {kind}, written as a string"
    if isinstance(prop.get("items"), dict):
        note += f"; elements of type {prop['items'].get('type', 'any')}"
    if isinstance(prop.get("properties"), dict):
        note += f"; entries {json.dumps(prop['properties'])}"
    out = {k: v for k, v in prop.items() if k not in ("items", "properties")}
    out["type"] = "string"
    out["description"] = str(prop.get("description", "")) + note + ")"
    return out


def openai_tools(case: BfclCase) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The case's function docs as OpenAI `tools=`, and the map back from sent names to BFCL's.

    OpenAI-style servers accept `[a-zA-Z0-9_-]` names only, so `math.sum` is sent as `math_sum`
    (as BFCL's function-calling handlers do) and the model's calls are renamed back before scoring.
    """
    language = case.language
    tools: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for function in copy.deepcopy(case.functions):
        original = str(function["name"])
        sent = re.sub(r"[^a-zA-Z0-9_-]", "_", original)
        names[sent] = original
        params = dict(function.get("parameters") or {})
        properties = params.get("properties") or {}
        if language == "python":
            properties = {k: _json_schema(v) for k, v in properties.items()}
        else:
            properties = {k: _as_string_parameter(v, language) for k, v in properties.items()}
        params.update(type="object", properties=properties)
        syntax = {"python": "Python 3", "java": "Java 8", "javascript": "JavaScript"}[language]
        description = f"{function.get('description', '')} (Function written in {syntax} syntax.)".strip()
        tools.append({"type": "function", "function": {"name": sent, "description": description, "parameters": params}})
    return tools, names


# ---------------------------------------------------------------------------- BFCL's checker
Checker = Callable[[list[dict[str, Any]], list[dict[str, Any]], list[Any], str], dict[str, Any]]


def load_bfcl_checker(wheel: Path) -> Checker:
    """BFCL's `ast_checker`, imported from the wheel with the heavy handler registry stubbed.

    Returns `check(functions, output, truth, category)`: `output` is `[{name: arguments}]` with
    BFCL's own (dotted) names, the language follows the category; BFCL's result dict comes back.
    """

    class _Config:
        underscore_to_dot = False  # names arrive as BFCL writes them (renamed back by the caller)

    class _Registry(dict[str, Any]):
        def __missing__(self, key: str) -> Any:
            return _Config()

    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.MODEL_CONFIG_MAPPING = _Registry()  # type: ignore[attr-defined]
    sys.modules["bfcl_eval.constants.model_config"] = stub
    if str(wheel) not in sys.path:
        sys.path.insert(0, str(wheel))  # a wheel is a zip: zipimport reads the pure-Python checker
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    languages = {"python": Language.PYTHON, "java": Language.JAVA, "javascript": Language.JAVASCRIPT}

    def check(functions: list[dict[str, Any]], output: list[dict[str, Any]], truth: list[Any], category: str) -> Any:
        return ast_checker(functions, output, truth, languages[language_of(category)], category, "stub-model")

    return check


def checker_verdict(
    check: Checker,
    functions: list[dict[str, Any]],
    truth: list[Any],
    category: str,
    calls: list[tuple[str, dict[str, Any]]],
) -> tuple[bool, str]:
    """BFCL's pass/fail for `calls` and, on fail, its error type and first message."""
    output = [{name: args} for name, args in calls]
    try:
        result = check(functions, output, truth, category)
    except Exception as exc:  # the checker chokes on some malformed inputs: that is its fail verdict
        return False, f"checker raised {type(exc).__name__}: {exc}"
    if result["valid"]:
        return True, ""
    errors = result.get("error") or [""]
    # The parallel checker nests the per-call reasons: report the first one.
    for error in errors:
        if isinstance(error, dict):
            (sub,) = error.values()
            return False, f"{sub['sub_error_type']}: {str(sub['sub_error'][0])[:160]}"
    return False, f"{result.get('error_type')}: {str(errors[0])[:160]}"


def relevance_verdict(category: str, decoded_calls: int) -> tuple[bool, str]:
    """BFCL's rule for (ir)relevance: irrelevance passes with no decodable call, relevance with one."""
    if "irrelevance" in category:
        return decoded_calls == 0, "" if decoded_calls == 0 else "irrelevance_error: the model called a function"
    return decoded_calls > 0, "" if decoded_calls else "relevance_error: no function call"
