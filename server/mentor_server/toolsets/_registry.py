"""The toolset registry, and toolsets built from schemas: inline in a request or from an operator's file.

Built-in toolsets (`ALL_BUILTIN`) are registered when the package is imported; an operator
adds more with `register_toolset` or a toolsets file. A request may carry its own tool
schemas (`toolset_from_schemas`): those give names and argument validation but never code,
so such tools are not executable. Only a toolsets file names implementations, as import paths
(`package.module:function`) of code the operator installed; nothing a request contains is
imported or run. Every malformed schema or file raises ScoringConfigError naming the field,
e.g. `tools[2].function.parameters.properties.a.type` or `toolsets[0].implementations.add`.
"""

from __future__ import annotations

import copy
import importlib
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._core import Tool, Toolset
from ._errors import config_error
from ._schemas import compile_validator, safe_text
from .calculator import CALCULATOR
from .dates import DATES
from .search import search_toolset_from_config
from .units import UNITS

__all__ = [
    "ALL_BUILTIN",
    "get_toolset",
    "list_toolsets",
    "load_toolsets_file",
    "register_toolset",
    "render_tools_for_prompt",
    "toolset_from_schemas",
    "unregister_toolset",
]

ALL_BUILTIN: tuple[str, ...] = ("calculator", "units", "dates")
"""Names of the toolsets that are always registered."""

_MAX_NAME_CHARS = 256
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

_lock = threading.Lock()
_registry: dict[str, Toolset] = {ts.name: ts for ts in (CALCULATOR, UNITS, DATES)}


# ---------------------------------------------------------------------------- registry
def register_toolset(toolset: Toolset, replace: bool = False) -> None:
    """Make `toolset` available by name; an existing name needs `replace=True` (built-ins included)."""
    if not isinstance(toolset, Toolset):
        raise TypeError(f"expected a Toolset, got {type(toolset).__name__}")
    with _lock:
        if toolset.name in _registry and not replace:
            raise config_error(
                f"a toolset named {toolset.name!r} is already registered (pass replace=True to replace it)",
                "toolset",
            )
        _registry[toolset.name] = toolset


def unregister_toolset(name: str) -> None:
    """Remove a registered toolset (unknown names are ignored). A removed built-in stays removed."""
    with _lock:
        _registry.pop(name, None)


def get_toolset(name: str) -> Toolset:
    """The registered toolset called `name`; an unknown name raises ScoringConfigError(param="toolset")."""
    with _lock:
        toolset = _registry.get(name) if isinstance(name, str) else None
        known = sorted(_registry)
    if toolset is None:
        raise config_error(f"unknown toolset {name!r}; known toolsets: {', '.join(known) or '(none)'}", "toolset")
    return toolset


def list_toolsets() -> list[Toolset]:
    """Every registered toolset, sorted by name."""
    with _lock:
        return [_registry[name] for name in sorted(_registry)]


def render_tools_for_prompt(toolset: Toolset) -> str:
    """The tool schemas as Qwen/Hermes chat templates write them inside `<tools></tools>`.

    One JSON object per line, in declaration order, with the spacing of the templates'
    `tojson` filter (`", "` and `": "`, non-ASCII kept); the caller adds the tags and the
    surrounding instructions.
    """
    return "\n".join(json.dumps(schema, ensure_ascii=False) for schema in toolset.schemas())


# ---------------------------------------------------------------------------- schemas
_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array"}


def _from_bfcl(schema: Any) -> Any:
    """Translate BFCL's type names (dict, float, tuple, any) into JSON schema, recursively."""
    if isinstance(schema, list):
        return [_from_bfcl(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            if value == "any":
                continue  # no constraint
            out[key] = _BFCL_TYPES.get(value, value)
        elif key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _from_bfcl(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "prefixItems"):
            out[key] = _from_bfcl(value)
        else:
            out[key] = value
    return out


def _check_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise config_error(f"{where}: a tool name must be a non-empty string, got {value!r}", where)
    if len(value) > _MAX_NAME_CHARS or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise config_error(
            f"{where}: a tool name must be at most {_MAX_NAME_CHARS} printable characters without spaces",
            where,
        )
    return value


def _tool_from_schema(item: Any, where: str, bfcl_types: bool) -> Tool:
    if not isinstance(item, dict):
        raise config_error(
            f"{where}: expected a tool schema object "
            '({"type": "function", "function": {"name", "description", "parameters"}}), '
            f"got {type(item).__name__}",
            where,
        )
    if "function" in item:
        if item.get("type", "function") != "function":
            raise config_error(
                f"{where}.type: only 'function' tools are supported, got {item['type']!r}", f"{where}.type"
            )
        body = item["function"]
        prefix = f"{where}.function"
        if not isinstance(body, dict):
            raise config_error(f"{prefix}: expected an object with name, description and parameters", prefix)
    elif "name" in item:
        body, prefix = item, where  # the bare form: {"name", "description", "parameters"}
    else:
        raise config_error(
            f"{where}.function: a tool schema needs a 'function' object (or a bare 'name')",
            f"{where}.function",
        )

    name = _check_name(body.get("name"), f"{prefix}.name")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise config_error(
            f"{prefix}.description: expected a string, got {type(description).__name__}",
            f"{prefix}.description",
        )
    if safe_text(description) is not description:  # it would make every response that lists it unsendable
        raise config_error(
            f"{prefix}.description: holds a lone UTF-16 surrogate (not valid Unicode text)", f"{prefix}.description"
        )
    # A private copy: the caller's request dict may change after the validator was compiled.
    where_params = f"{prefix}.parameters"
    try:
        parameters = copy.deepcopy(body.get("parameters", _EMPTY_PARAMETERS))
        if bfcl_types:
            parameters = _from_bfcl(parameters)
    except RecursionError:
        raise config_error(f"{where_params}: the schema nests too deeply", where_params) from None
    if not isinstance(parameters, dict):
        raise config_error(
            f"{where_params}: expected a JSON schema object, got {type(parameters).__name__}", where_params
        )
    if parameters.get("type", "object") != "object":
        raise config_error(
            f"{where_params}.type: a function's arguments are an object, got type {parameters['type']!r}",
            f"{where_params}.type",
        )
    compile_validator(parameters, where_params)  # raises naming the path inside the schema
    return Tool(name=name, description=description, parameters=parameters, fn=None)


def _tools_from_schemas(schemas: Any, where: str, bfcl_types: bool) -> list[Tool]:
    if not isinstance(schemas, list):
        raise config_error(f"{where}: expected a list of tool schemas, got {type(schemas).__name__}", where)
    tools: list[Tool] = []
    seen: set[str] = set()
    for index, item in enumerate(schemas):
        tool = _tool_from_schema(item, f"{where}[{index}]", bfcl_types)
        if tool.name in seen:
            field = f"{where}[{index}]" + (".function.name" if "function" in item else ".name")
            raise config_error(f"{field}: duplicate tool name {tool.name!r}", field)
        seen.add(tool.name)
        tools.append(tool)
    return tools


def toolset_from_schemas(
    schemas: list[dict[str, Any]],
    name: str = "inline",
    *,
    description: str = "",
    bfcl_types: bool = False,
) -> Toolset:
    """A toolset of schemas only (none executable), e.g. the `tools` a request carries.

    Accepts OpenAI's `{"type": "function", "function": {...}}` items and the bare
    `{"name", "description", "parameters"}` form; `parameters` may be omitted (no arguments).
    `bfcl_types=True` first translates BFCL's type names (`dict`, `float`, `tuple`, `any`).
    Raises ScoringConfigError naming the field, e.g. `tools[2].function.parameters`.
    """
    return Toolset(name, _tools_from_schemas(schemas, "tools", bfcl_types), description=description)


# ---------------------------------------------------------------------------- files
_ENTRY_KEYS = ("name", "description", "tools", "implementations", "search")


def _import_callable(path: Any, where: str) -> Callable[..., Any]:
    if not isinstance(path, str) or path.count(":") != 1:
        raise config_error(f"{where}: expected an import path 'package.module:function', got {path!r}", where)
    module_name, attribute = path.split(":")
    if not module_name or not attribute:
        raise config_error(f"{where}: expected an import path 'package.module:function', got {path!r}", where)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises while loading
        raise config_error(
            f"{where}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}", where
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise config_error(f"{where}: {module_name!r} has no attribute {attribute!r}", where)
        target = getattr(target, part)
    if not callable(target):
        raise config_error(f"{where}: {path!r} is not callable", where)
    return target  # type: ignore[no-any-return]


def _toolset_from_entry(entry: Any, where: str, base: Path | None = None) -> Toolset:
    if not isinstance(entry, dict):
        raise config_error(f"{where}: expected an object with name, tools and implementations", where)
    unknown = [key for key in entry if key not in _ENTRY_KEYS]
    if unknown:
        raise config_error(
            f"{where}.{unknown[0]}: unknown key (expected {', '.join(_ENTRY_KEYS)})", f"{where}.{unknown[0]}"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise config_error(f"{where}.name: a toolset needs a non-empty name", f"{where}.name")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise config_error(f"{where}.description: expected a string", f"{where}.description")
    if "search" in entry:  # a `search` toolset over an index folder or a retriever URL (see toolsets.search)
        if "tools" in entry or "implementations" in entry:
            raise config_error(f"{where}.search: a search toolset has no 'tools' or 'implementations'", where)
        return search_toolset_from_config(entry["search"], name, base, f"{where}.search", description)
    if "tools" not in entry:
        raise config_error(f"{where}.tools: a toolset needs a list of tool schemas", f"{where}.tools")
    tools = _tools_from_schemas(entry["tools"], f"{where}.tools", bfcl_types=False)
    implementations = entry.get("implementations") or {}
    if not isinstance(implementations, Mapping):
        raise config_error(
            f"{where}.implementations: expected a mapping of tool name to import path",
            f"{where}.implementations",
        )
    by_name = {tool.name: tool for tool in tools}
    for tool_name, path in implementations.items():
        field = f"{where}.implementations.{tool_name}"
        if tool_name not in by_name:
            raise config_error(f"{field}: no tool named {tool_name!r} in this toolset's tools", field)
        by_name[tool_name] = Tool(
            name=tool_name,
            description=by_name[tool_name].description,
            parameters=by_name[tool_name].parameters,
            fn=_import_callable(path, field),
        )
    return Toolset(name, list(by_name.values()), description=description)


def load_toolsets_file(path: str | Path) -> list[Toolset]:
    """Read toolsets from an operator's YAML (`.yaml`/`.yml`) or JSON (`.json`) file.

    The file holds `{"toolsets": [{"name", "description", "tools": [OpenAI schemas...],
    "implementations": {"tool_name": "package.module:function"}}]}`; tools without an
    implementation are schema-only. The toolsets are returned, not registered. Raises
    ScoringConfigError naming the field (`toolsets[0].tools[1].function.name`), or
    `param="path"` when the file cannot be read or parsed.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise config_error(f"cannot read toolsets file {str(file)!r}: {exc.strerror or exc}", "path") from exc
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # only the service's file loading needs PyYAML

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise config_error(f"toolsets file {str(file)!r} is not valid {file.suffix or 'YAML'}: {exc}", "path") from exc
    if not isinstance(data, dict) or not isinstance(data.get("toolsets"), list):
        raise config_error(f"toolsets file {str(file)!r}: expected a top-level 'toolsets' list", "toolsets")
    toolsets: list[Toolset] = []
    names: set[str] = set()
    for index, entry in enumerate(data["toolsets"]):
        toolset = _toolset_from_entry(entry, f"toolsets[{index}]", file.parent)
        if toolset.name in names:
            raise config_error(
                f"toolsets[{index}].name: duplicate toolset name {toolset.name!r}", f"toolsets[{index}].name"
            )
        names.add(toolset.name)
        toolsets.append(toolset)
    return toolsets
