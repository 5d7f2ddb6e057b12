"""Tools for TRL's rollout loop, and tool schemas for the reward, from one source.

`GRPOTrainer(tools=[...])` takes Python callables with type hints and a Google-style docstring:
TRL renders their schema into the prompt (transformers' `get_json_schema`) and calls
`fn(**arguments)` for each call the model makes. The reward must check the model's calls
against the same schemas, so:

- `trl_tools(toolset)` builds those callables for a registered toolset from the service's
  schemas (`GET /v1/toolsets`); each forwards the call to the service's `/v1/tools/execute`
  (async, one HTTP client per event loop) or, with `local=True`, to the in-process toolset;
  the model sees the toolset's `content` text, errors included;
- `tool_schemas(tools)` turns the user's own callables (or schemas) into the OpenAI-format
  schemas that `trl_reward_func(tools=...)` sends to the service;
- `prompt_schemas(schemas)` gives the schemas as the chat template will show them once they
  have passed through `tools=`, for prompts rendered outside the trainer (data, evaluation).

This is the one implementation: `mentor_trainer` builds its rollout tools with `trl_tools` and a
`ToolExecutor` of its own choosing (timed, local or remote).

Example:
    >>> def get_weather(city: str) -> str:
    ...     '''The weather in a city.
    ...
    ...     Args:
    ...         city: the city's name
    ...     '''
    ...     return "sunny"
    >>> tool_schemas([get_weather])[0]["function"]["name"]
    'get_weather'
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._client import AsyncRewardClient, RewardClient
from ..local import LocalBackend
from ._common import PerLoop

__all__ = ["ToolExecutor", "prompt_schemas", "tool_schemas", "trl_tools"]

_PY_TYPES: dict[str, type] = {"number": float, "integer": int, "string": str, "boolean": bool, "object": dict}


def tool_schemas(tools: Sequence[Mapping[str, Any] | Callable[..., Any]]) -> list[dict[str, Any]]:
    """OpenAI-format schemas (`{"type": "function", "function": {...}}`) for `tools`: schemas
    pass through, callables are read as TRL reads them (transformers' `get_json_schema`)."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool, Mapping):
            schema = dict(tool)
            out.append(schema if "function" in schema else {"type": "function", "function": schema})
        elif callable(tool):
            try:
                from transformers.utils.chat_template_utils import get_json_schema
            except ImportError as exc:  # pragma: no cover - TRL brings transformers
                raise ImportError(
                    "reading tool callables needs transformers: pip install 'mentor-reward[train]'"
                ) from exc
            out.append(dict(get_json_schema(tool)))
        else:
            raise TypeError(f"a tool must be a JSON schema (dict) or a callable, got {type(tool).__name__}")
    return out


# ---------------------------------------------------------------------------- callables from schemas
def _annotation(schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["number", "null"]: the first non-null type describes it
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "array":
        items = schema.get("items")
        inner = _annotation(items) if isinstance(items, Mapping) and items.get("type") else None
        return list if inner is None else list.__class_getitem__(inner)
    return _PY_TYPES.get(str(kind), str)


def _shaped(forward: Callable[..., Any], schema: Mapping[str, Any]) -> Callable[..., Any]:
    """`forward` with the name, keyword-only signature, annotations and Google docstring that
    make transformers render `schema` back."""
    fn = schema.get("function", schema)
    params = fn.get("parameters") or {}
    properties: dict[str, Any] = dict(params.get("properties") or {})
    required = set(params.get("required") or [])
    annotations = {name: _annotation(p) for name, p in properties.items()}
    doc = [str(fn.get("description") or "").strip() or "A tool.", "", "Args:"]
    for name, p in properties.items():
        text = " ".join(str(p.get("description") or name).split())
        if isinstance(p.get("enum"), list):
            text += f" (choices: {json.dumps(p['enum'])})"
        doc.append(f"    {name}: {text}")
    forward.__name__ = forward.__qualname__ = str(fn["name"])
    forward.__doc__ = "\n".join(doc) + "\n"
    forward.__annotations__ = annotations
    forward.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if name in required else None,
                annotation=annotations[name],
            )
            for name in properties
        ]
    )
    return forward


class ToolExecutor:
    """Runs tool calls for rollouts through the service (or in-process with `local=True`).

    Picklable: live clients are left out and rebuilt lazily, one async client per event loop
    (TRL runs async tools on its own long-lived loop). `backend` is the blocking client (or the
    `LocalBackend`) for the rest of the API: scoring, spec validation, discovery.
    `toolset_files` (local only) are toolsets files the in-process backend and its scoring
    processes load, as the service's `toolsets` setting (e.g. a `search` toolset's index).
    """

    def __init__(
        self,
        base_url: str | Sequence[str] | None = None,
        *,
        local: bool = False,
        api_key: str | None = None,
        timeout: float | None = None,
        toolset_files: Sequence[str | Path] = (),
    ) -> None:
        if toolset_files and not local:
            raise ValueError("ToolExecutor: toolset_files apply to local=True; a service loads its own")
        self.base_url = base_url
        self.local = local
        self.api_key = api_key
        self.timeout = timeout
        self.toolset_files = [str(path) for path in toolset_files]
        self._setup()

    def _setup(self) -> None:
        self._backend: RewardClient | LocalBackend | None = None
        self._clients: PerLoop[AsyncRewardClient] = PerLoop(
            lambda: AsyncRewardClient(self.base_url, api_key=self.api_key, timeout=self.timeout)
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "local": self.local,
            "api_key": self.api_key,
            "timeout": self.timeout,
            "toolset_files": self.toolset_files,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"toolset_files": [], **state})
        self._setup()

    @property
    def backend(self) -> RewardClient | LocalBackend:
        if self._backend is None:
            self._backend = (
                LocalBackend(toolset_files=self.toolset_files)
                if self.local
                else RewardClient(self.base_url, api_key=self.api_key, timeout=self.timeout)
            )
        return self._backend

    def schemas(self, toolset: str) -> list[dict[str, Any]]:
        for info in self.backend.toolsets().toolsets:
            if info.name == toolset:
                return [dict(t) for t in info.tools]
        raise ValueError(f"no toolset named {toolset!r}")

    def run(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        return self.backend.execute_tool(name, arguments, toolset=toolset).content

    async def arun(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        if self.local:  # the in-process toolset has no async API; its tools are quick and bounded
            return self.run(toolset, name, arguments)
        response = await self._clients.get().execute_tool(name, arguments, toolset=toolset)
        return response.content

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def trl_tools(
    toolset: str,
    base_url: str | Sequence[str] | None = None,
    *,
    local: bool = False,
    api_key: str | None = None,
    timeout: float | None = None,
    executor: ToolExecutor | None = None,
) -> list[Callable[..., Any]]:
    """The `GRPOTrainer(tools=...)` list for a registered toolset.

    Over HTTP the tools are `async def` (TRL gathers a step's async tool calls concurrently);
    with `local=True` they run the toolset in this process. Pass the same `toolset` to
    `trl_reward_func` so the reward checks calls against the tools the model was shown.
    `executor` runs the calls instead of one built from the other arguments (which must then
    be left out): a subclass can time or log them.
    """
    if executor is None:
        executor = ToolExecutor(base_url, local=local, api_key=api_key, timeout=timeout)
    elif base_url is not None or local or api_key is not None or timeout is not None:
        raise ValueError("trl_tools: pass either an executor or base_url/local/api_key/timeout, not both")
    make = _sync_tool if executor.local else _async_tool
    return [_shaped(make(executor, toolset, str(s.get("function", s)["name"])), s) for s in executor.schemas(toolset)]


# A fresh function per tool: `_shaped` sets its name, signature and docstring, and TRL calls it
# with the model's arguments only.
def _sync_tool(executor: ToolExecutor, toolset: str, name: str) -> Callable[..., str]:
    def forward(**arguments: Any) -> str:
        return executor.run(toolset, name, arguments)

    return forward


def _async_tool(executor: ToolExecutor, toolset: str, name: str) -> Callable[..., Any]:
    async def forward(**arguments: Any) -> str:
        return await executor.arun(toolset, name, arguments)

    return forward


class _SchemaOnly(ToolExecutor):
    """For rendering only: a tool built on it cannot run."""

    def __init__(self) -> None:
        super().__init__(local=True)

    def run(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        raise RuntimeError("schema-only tool: it cannot run")


def prompt_schemas(schemas: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`schemas` as the chat template shows them once they pass through `GRPOTrainer(tools=...)`.

    TRL renders each tool callable back into a schema (transformers' `get_json_schema`), which
    normalises descriptions and types; data whose system prompts embed these is the same text
    as a prompt rendered by the trainer.
    """
    executor = _SchemaOnly()
    callables = [_shaped(_sync_tool(executor, "", str(s.get("function", s)["name"])), s) for s in schemas]
    return tool_schemas(callables)
