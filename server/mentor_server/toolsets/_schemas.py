"""Compiling tool parameter schemas into validators whose cost is bounded, whatever the schema says.

A tool schema may come from a request (inline `tools`), so it is hostile input. jsonschema
matches `pattern` and `patternProperties` with Python's backtracking `re`: `"^(a+)+$"` against
`"aaaa...!"` pinned a core for 23+ minutes. Here every regular expression of a schema is
compiled with RE2 (google-re2), whose matching time is linear in the text, and the validator
class is jsonschema's own for the schema's draft with the keywords that match regexes
(`pattern`, `patternProperties`, `additionalProperties`) replaced by RE2 versions.

Configuration errors naming the field: a pattern RE2 cannot compile (backreferences,
lookaround), e.g. `tools[0].function.parameters.properties.code.pattern`; a schema whose
canonical JSON is longer than `MAX_SCHEMA_CHARS` or that nests deeper than `MAX_SCHEMA_DEPTH`;
one holding a lone UTF-16 surrogate (no response could carry it); `unevaluatedProperties`
together with `patternProperties` (jsonschema evaluates that pair with `re` internally); and a
schema that cannot be applied even to `{}` (a `$ref` that cannot be resolved, or that refers
to itself without end). Validators are cached by canonical schema text.

RE2 follows ECMAScript more closely than `re` in one visible way: `\\d` and `\\w` are ASCII only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import re2
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

from ._errors import config_error

MAX_SCHEMA_CHARS = 100_000
"""Longest accepted parameter schema, as canonical JSON (real tool schemas are a few KB)."""
MAX_SCHEMA_DEPTH = 64
"""Deepest accepted nesting of objects and arrays in a schema (jsonschema recurses per level)."""

_MESSAGE_CHARS = 200
# Keywords whose values are data, not schemas: a "pattern" key inside them is not a regex.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "description", "title", "$comment"})

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are reported to the caller, not to stderr


class PatternError(ValueError):
    """A schema regex RE2 cannot compile (the message says why)."""


@functools.lru_cache(maxsize=4096)
def _re2(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(reason) from None
    except UnicodeEncodeError:
        raise PatternError("the pattern holds a lone UTF-16 surrogate") from None


def safe_text(text: str) -> str:
    """`text` with lone UTF-16 surrogates written as `\\udXXX` escapes, so it can be encoded as UTF-8."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def pattern_search(pattern: str, text: str) -> bool:
    """Whether the RE2 `pattern` matches somewhere in `text` (what jsonschema's `re.search` answers).

    Lone surrogates (which UTF-8, and so RE2, cannot hold) are matched in their escaped form.
    """
    compiled = _re2(pattern)
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:
        return compiled.search(safe_text(text)) is not None


def _shorten(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."


# ---------------------------------------------------------------------------- keywords
# Same messages and error paths as jsonschema's own keywords; only the matching changed.
def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not pattern_search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, pattern_properties: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if pattern_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def additional_keys(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The keys of `instance` that neither `properties` nor `patternProperties` of `schema` covers."""
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [key for key in instance if key not in properties and not any(pattern_search(p, str(key)) for p in patterns)]


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield jsonschema.ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            names = sorted(extras, key=str)
            verb = "was" if len(names) == 1 else "were"
            joined = ", ".join(repr(extra) for extra in names)
            yield jsonschema.ValidationError(f"Additional properties are not allowed ({joined} {verb} unexpected)")


_LINEAR_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


@functools.cache
def _linear(cls: type[Validator]) -> type[Validator]:
    """The draft's validator class with RE2 regex keywords (one class per draft)."""
    return jsonschema.validators.extend(cls, _LINEAR_KEYWORDS)  # type: ignore[no-untyped-call,no-any-return]


# ---------------------------------------------------------------------------- checks
def _regexes(schema: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, regex) of every `pattern` and `patternProperties` key in the schema, iteratively."""
    stack = [(schema, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key in _DATA_KEYWORDS:
                continue
            if key == "pattern" and isinstance(value, str):
                yield f"{where}.pattern", value
            elif key == "patternProperties" and isinstance(value, dict):
                for regex, subschema in value.items():
                    yield f"{where}.patternProperties.{regex}", regex
                    stack.append((subschema, f"{where}.patternProperties.{regex}"))
            elif isinstance(value, dict | list):
                stack.append((value, f"{where}.{key}"))


def _depth(schema: Any) -> int:
    deepest = 0
    stack = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_SCHEMA_DEPTH:  # deeper is already an error: stop walking
                stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _has_key(schema: Any, wanted: str) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if wanted in node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


@functools.lru_cache(maxsize=4096)
def _compile(canonical_schema: str) -> Validator:
    schema = json.loads(canonical_schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return _linear(cls)(schema)


def compile_validator(parameters: Mapping[str, Any], param: str) -> Validator:
    """Compile (or fetch from the shared cache) the validator for one tool's parameter schema.

    The draft follows the schema's `$schema` (Draft 2020-12 when absent). Raises
    ScoringConfigError naming `param` (and the path inside the schema when there is one) for a
    schema that is not plain JSON, too long, not a valid JSON schema, or not usable under the
    rules of the module docstring.
    """
    try:
        canonical = json.dumps(parameters, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise config_error(f"{param}: the schema is not plain JSON ({_shorten(str(exc))})", param) from exc
    if len(canonical) > MAX_SCHEMA_CHARS:
        raise config_error(
            f"{param}: the schema is {len(canonical):,} characters as JSON; at most {MAX_SCHEMA_CHARS:,} are accepted",
            param,
        )
    if _depth(parameters) > MAX_SCHEMA_DEPTH:
        raise config_error(f"{param}: the schema nests more than {MAX_SCHEMA_DEPTH} levels deep", param)
    if safe_text(canonical) is not canonical:
        raise config_error(f"{param}: the schema holds a lone UTF-16 surrogate (not valid Unicode text)", param)
    for where, regex in _regexes(parameters, param):
        try:
            _re2(regex)
        except PatternError as exc:
            raise config_error(f"{where}: {regex!r} is not a supported regular expression ({exc})", where) from None
    if _has_key(parameters, "unevaluatedProperties") and _has_key(parameters, "patternProperties"):
        raise config_error(f"{param}: unevaluatedProperties cannot be combined with patternProperties", param)
    try:
        validator = _compile(canonical)
    except jsonschema.SchemaError as exc:
        where = param + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path)
        raise config_error(f"{where}: not a valid JSON schema: {_shorten(exc.message)}", where) from exc
    except RecursionError:
        raise config_error(f"{param}: the schema nests too deeply to check", param) from None
    problem = schema_problem(validator, {})
    if problem is not None:
        raise config_error(f"{param}: {problem}", param)
    return validator


def schema_problem(validator: Validator, arguments: Any) -> str | None:
    """Why the schema cannot be applied to `arguments` (None when it can): an unresolvable or endless `$ref`."""
    try:
        for _ in validator.iter_errors(arguments):
            pass
    except RecursionError:
        return "the schema refers to itself without end ($ref)"
    except Unresolvable as exc:
        return f"the schema refers to something that cannot be resolved: {_shorten(str(exc))}"
    return None
