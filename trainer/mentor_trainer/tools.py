"""Tool callables for TRL's rollout loop, built from tool schemas, executed locally or by the service.

`GRPOTrainer(tools=[...])` needs Python callables with type hints and a Google docstring: it renders
their schema into the prompt (`transformers.utils.get_json_schema`) and calls them as
`fn(**arguments)` when the model emits a call. The trainer must not need the tools' implementations
(they live with the reward service), so each callable here is *built from the tool's JSON schema*:
its signature, annotations and docstring reproduce the schema, and its body forwards the call to an
executor: the service's `/v1/tools/execute` through the client (async, one HTTP client per event
loop) or the registered toolset in-process (`--local`). Either way the model sees the toolset's
`content` text, errors included (`{"error": ...}`), the same text `eval` shows it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

_JSON_TO_PY: dict[str, Any] = {
    "number": float,
    "integer": int,
    "string": str,
    "boolean": bool,
    "object": dict,
}


class ToolExecutor(Protocol):
    """Runs one call and returns the text shown to the model."""

    def run(self, toolset: str, name: str, arguments: dict[str, Any]) -> str: ...


def _annotation(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["number", "null"] and friends: the first real type describes it
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "array":
        items = schema.get("items")
        # list.__class_getitem__ builds `list[T]` from a runtime type (the subscript form is static-only).
        return list.__class_getitem__(_annotation(items)) if isinstance(items, dict) and items.get("type") else list
    return _JSON_TO_PY.get(str(kind), str)


def _docstring(description: str, properties: dict[str, Any]) -> str:
    lines = [description.strip() or "A tool.", "", "Args:"]
    for pname, pschema in properties.items():
        text = " ".join(str(pschema.get("description") or pname).split())
        if isinstance(pschema.get("enum"), list):
            import json

            text += f" (choices: {json.dumps(pschema['enum'])})"
        lines.append(f"    {pname}: {text}")
    return "\n".join(lines) + "\n"


def _function_parts(schema: dict[str, Any]) -> tuple[str, str, dict[str, Any], list[str]]:
    fn = schema.get("function", schema)
    params = fn.get("parameters") or {}
    return (
        str(fn["name"]),
        str(fn.get("description") or ""),
        dict(params.get("properties") or {}),
        list(params.get("required") or []),
    )


def _shape(forward: Callable[..., Any], schema: dict[str, Any]) -> Callable[..., Any]:
    """Give `forward` the name, signature, annotations and docstring that reproduce `schema`."""
    name, description, properties, required = _function_parts(schema)
    parameters = []
    annotations: dict[str, Any] = {}
    for pname, pschema in properties.items():
        annotations[pname] = _annotation(pschema)
        default = inspect.Parameter.empty if pname in required else None
        parameters.append(
            inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotations[pname])
        )
    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = _docstring(description, properties)
    forward.__annotations__ = annotations
    forward.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return forward


def make_tool(schema: dict[str, Any], executor: ToolExecutor, toolset: str) -> Callable[..., str]:
    """A synchronous TRL tool that runs `executor` (used for the in-process toolset)."""
    name = _function_parts(schema)[0]

    def forward(**arguments: Any) -> str:
        return executor.run(toolset, name, arguments)

    return _shape(forward, schema)


def make_async_tool(schema: dict[str, Any], executor: ToolRunner, toolset: str) -> Callable[..., Any]:
    """An `async def` TRL tool: TRL gathers the async tools of a step concurrently on its event loop."""
    name = _function_parts(schema)[0]

    async def forward(**arguments: Any) -> str:
        return await executor.arun(toolset, name, arguments)

    return _shape(forward, schema)


def trl_schema(tool: Callable[..., Any]) -> dict[str, Any]:
    """The schema transformers renders for a tool callable (what the prompt will show)."""
    from transformers.utils.chat_template_utils import get_json_schema

    schema: dict[str, Any] = get_json_schema(tool)
    return schema


class _NoExecutor:
    def run(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        raise RuntimeError("schema-only tool: it cannot run")


def prompt_schemas(schemas: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Schemas as the chat template will show them once they pass through TRL's `tools=`.

    The data's system prompts embed these, so a prompt rendered from the dataset and one
    rendered by `GRPOTrainer(tools=...)` are the same text.
    """
    return [trl_schema(make_tool(s, _NoExecutor(), "")) for s in schemas]


# ---------------------------------------------------------------------------- executors
class ToolRunner:
    """Executes tool calls for rollouts: in-process (`local=True`) or via the service's tool endpoint.

    Both paths go through the client SDK (`LocalBackend` / `RewardClient` share one API), so
    local and remote runs show the model the same `content`. The async path keeps one
    `AsyncRewardClient` per event loop: TRL runs async tools on its own long-lived daemon loop,
    and an httpx connection pool must not cross loops. A service that cannot be reached (after
    the client's retries) raises; TRL then shows the model `{"error": ...}` for that call.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        local: bool = False,
        api_key: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url
        self.local = local
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._backend: Any = None
        self._async_clients: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # live clients stay out of pickles
        return {k: v for k, v in self.__dict__.items() if k not in ("_backend", "_async_clients")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._backend, self._async_clients = None, {}

    @property
    def backend(self) -> Any:
        """`LocalBackend` or a blocking `RewardClient` (both have `execute_tool`, `score`, `toolsets`)."""
        if self._backend is None:
            if self.local:
                from mentor_client import LocalBackend

                self._backend = LocalBackend()
            else:
                from mentor_client import RewardClient

                self._backend = RewardClient(self.base_url, api_key=self.api_key, timeout=self.timeout_s)
        return self._backend

    def run(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        return str(self.backend.execute_tool(name, arguments, toolset=toolset).content)

    async def arun(self, toolset: str, name: str, arguments: dict[str, Any]) -> str:
        if self.local:
            return self.run(toolset, name, arguments)
        import asyncio

        from mentor_client import AsyncRewardClient

        loop_id = id(asyncio.get_running_loop())
        client = self._async_clients.get(loop_id)
        if client is None:
            client = AsyncRewardClient(self.base_url, api_key=self.api_key, timeout=self.timeout_s)
            self._async_clients[loop_id] = client
        response = await client.execute_tool(name, arguments, toolset=toolset)
        return str(response.content)

    def schemas(self, toolset: str) -> list[dict[str, Any]]:
        for info in self.backend.toolsets().toolsets:
            if info.name == toolset:
                return list(info.tools)
        raise ValueError(f"no toolset named {toolset!r} ({'local' if self.local else self.base_url})")

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def build_tools(runner: ToolRunner, toolset: str) -> list[Callable[..., Any]]:
    """The TRL `tools=` list for `toolset`: sync in-process tools, or async service-backed ones."""
    schemas = runner.schemas(toolset)
    if runner.local:
        return [make_tool(s, runner, toolset) for s in schemas]
    return [make_async_tool(s, runner, toolset) for s in schemas]
