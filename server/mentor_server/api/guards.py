"""Request guards: API-key auth, body-size limits, per-field bounds, nesting depth, query parameters.

Auth and the size limit are plain ASGI middleware so that an unauthenticated or oversized request is refused
before the service spends anything on it (FastAPI dependencies only run after the body has
been read and parsed). `check_depth` bounds nesting inside parsed values, because a deeply
nested argument object that JSON accepts would still exhaust the recursion limit of the
pickling, scoring and recording steps downstream.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import typing
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_bytes
from .settings import ServiceSettings

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Paths that never need a key: load balancers and orchestrators probe them unauthenticated."""

DOC_PATHS = frozenset({"/docs", "/redoc", "/openapi.json"})
DOC_ASSETS_PREFIX = "/docs-assets/"
"""The API documentation is public: it describes routes, holds no data and grows no state, and a
browser cannot attach a bearer header to a page load (Swagger UI's Authorize button adds the key
to the calls it makes from the page, which stay guarded)."""


KEY_PROMPT_PATHS = frozenset({"/ui"})
"""Pages a browser opens by navigation, which carries no bearer header: a request with no
`Authorization` header at all passes to the route, which answers a shell that holds no data and
asks for the key (see `routes.ui`); a request with any such header is checked as everywhere."""


def _open_path(path: str) -> bool:
    return path in OPEN_PATHS or path in DOC_PATHS or path.startswith(DOC_ASSETS_PREFIX)


async def _send_error(
    send: Send, status: int, type: str, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = error_bytes(type, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ApiKeyMiddleware:
    """Require `Authorization: Bearer <key>` on every path but the health probes and the API docs
    (and `/ui` asked without any key header: its shell, see `KEY_PROMPT_PATHS`).

    Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every configured
    key without stopping early, so the time taken says nothing about how close a guess was.
    The header's raw bytes are compared with the key's UTF-8 bytes (HTTP carries bytes; a
    key with non-ASCII characters works when the client sends it as UTF-8, as ours does).
    """

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self._digests = [hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest() for key in keys]

    def _authorized(self, header: bytes | str | None) -> bool:
        if not header:
            return False
        if isinstance(header, str):
            header = header.encode("utf-8", "surrogatepass")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        candidate = hashlib.sha256(token.strip()).digest()
        ok = False
        for digest in self._digests:
            ok |= hmac.compare_digest(candidate, digest)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        if self._authorized(header) or (header is None and scope["path"] in KEY_PROMPT_PATHS):
            await self.app(scope, receive, send)
            return
        message = "missing API key: send 'Authorization: Bearer <key>'" if not header else "invalid API key"
        await _send_error(send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")])


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes", type="too_large")


class BodySizeMiddleware:
    """Refuse bodies over `limit` bytes (or a smaller per-path limit in `path_limits`): by
    Content-Length up front, and by counting the bytes actually received (a chunked body, or a
    client that lies about its length)."""

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.default_limit)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _send_error(send, 413, "too_large", BodyTooLarge(limit).message)
                    return
                break

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside FastAPI's body read; the ApiError handler turns it into a 413.
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            # Only reached when the body was read outside a route (no handler saw it).
            if started:
                raise
            await _send_error(send, 413, "too_large", exc.message)


def check_depth(value: Any, limit: int, param: str) -> None:
    """Raise a 422 when `value` nests deeper than `limit` containers. Iterative: never recurses."""
    if not within_depth((value,), limit):
        raise ApiError(422, f"{param} nests deeper than {limit} levels", type="too_deep", param=param)


def within_depth(values: Iterable[Any], limit: int) -> bool:
    """Whether none of `values` nests deeper than `limit` containers (`check_depth`'s test).

    Level by level, keeping only the containers, one comprehension per level: it runs on the
    event loop for every item of every batch, and most values in an item are scalars, looked
    at once each. A batch's items go through in one call (one loop, not one per item); the
    caller names the culprit with `check_depth` item by item only when this says no.
    """
    level: list[Any] = [value for value in values if isinstance(value, _CONTAINERS)]
    depth = 0
    while level:
        if depth >= limit:
            return False
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, _CONTAINERS)
        ]
        depth += 1
    return True


_CONTAINERS = (dict, list, tuple)


# ---------------------------------------------------------------------------- per-field bounds
# Cheap checks (a length, a count) that run on the event loop before anything whose cost grows
# with the request: a long completion, many calls or messages, many or huge inline schemas are
# refused as a 413 that names the field and the limit, instead of stalling a parser, the
# pairing or a schema compiler. They read plain JSON values, so they work before or after
# pydantic has seen the body.


def _too_large(param: str, what: str, limit: int, unit: str) -> ApiError:
    return ApiError(413, f"{param}: {what} is over the limit of {limit} {unit}", type="too_large", param=param)


def check_run_id(run_id: Any, limit: int, param: str = "run_id") -> None:
    """`run_id` is copied into every record row: bound it."""
    if isinstance(run_id, str) and len(run_id) > limit:
        raise _too_large(param, f"the run id has {len(run_id)} characters, which", limit, "characters")


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):  # OpenAI content parts
        return sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return 0


def check_completion(completion: Any, param: str, *, max_chars: int, max_messages: int, max_calls: int) -> None:
    """Bound one completion: its text, its number of messages, and its number of tool calls."""
    if isinstance(completion, str):
        if len(completion) > max_chars:
            raise _too_large(param, f"the completion has {len(completion)} characters, which", max_chars, "characters")
        return
    if not isinstance(completion, list):
        return  # not a completion at all: the engine reports it as the item's error
    if len(completion) > max_messages:
        raise _too_large(param, f"the completion has {len(completion)} messages, which", max_messages, "messages")
    chars = calls = 0
    for message in completion:
        if not isinstance(message, dict):
            continue
        chars += _text_length(message.get("content"))
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            calls += len(tool_calls)
            for call in tool_calls:
                function = call.get("function") if isinstance(call, dict) else None
                arguments = function.get("arguments") if isinstance(function, dict) else None
                if isinstance(arguments, str):
                    chars += len(arguments)
    if chars > max_chars:
        raise _too_large(param, f"the completion has {chars} characters of text, which", max_chars, "characters")
    if calls > max_calls:
        raise _too_large(param, f"the completion has {calls} tool calls, which", max_calls, "calls")


def check_items(items: Any, settings: ServiceSettings, param: str = "items") -> None:
    """The item count first (before any item is read), then each item's completion bound."""
    if not isinstance(items, list):
        return
    if len(items) > settings.max_items:
        raise ApiError(
            413,
            f"the batch has {len(items)} items; the limit is {settings.max_items} per request "
            "(split it, as the client does)",
            type="too_many_items",
            param=param,
        )
    for index, item in enumerate(items):
        if isinstance(item, dict):
            check_item_completion(item.get("completion"), f"{param}[{index}].completion", settings)


def check_item_completion(completion: Any, param: str, settings: ServiceSettings) -> None:
    """`check_completion` with the service's limits."""
    check_completion(
        completion,
        param,
        max_chars=settings.max_completion_chars,
        max_messages=settings.max_messages_per_completion,
        max_calls=settings.max_calls_per_completion,
    )


def json_size(value: Any, param: str) -> int:
    """Characters of `value` as compact JSON (C speed); a value too deep to serialise is a 422."""
    try:
        return len(json.dumps(value, separators=(",", ":")))
    except RecursionError:
        raise ApiError(422, f"{param} nests too deeply", type="too_deep", param=param) from None
    except (TypeError, ValueError):
        return 0  # not JSON at all: the schema check that follows names the problem


def check_schemas(tools: Any, spec: Any, overrides: Any, settings: ServiceSettings) -> None:
    """Bound inline tool schemas (count and size) and inline reward specs (size)."""
    if isinstance(tools, list) and len(tools) > settings.max_tools_per_request:
        raise _too_large(
            "tools", f"the request has {len(tools)} tool schemas, which", settings.max_tools_per_request, "tools"
        )
    for name, value in (("tools", tools), ("spec", spec), ("overrides", overrides)):
        if value is not None:
            size = json_size(value, name)
            if size > settings.max_schema_bytes:
                raise _too_large(name, f"{size} bytes of JSON", settings.max_schema_bytes, "bytes")


def check_score_limits(body: Any, settings: ServiceSettings) -> None:
    """Every cheap bound of a `/v1/score` body (a dict of plain JSON, or a ScoreRequest)."""

    def get(name: str) -> Any:
        return body.get(name) if isinstance(body, dict) else getattr(body, name, None)

    check_items(get("items"), settings)
    check_schemas(get("tools"), get("spec"), get("overrides"), settings)
    check_run_id(get("run_id"), settings.max_run_id_chars)


_INTEGER = re.compile(r"-?[0-9]+")
_QUERY_RULES: dict[int, dict[str, bool]] = {}


def _is_integer(annotation: Any) -> bool:
    return annotation is int or int in typing.get_args(annotation)


def _query_rules(dependant: Any) -> dict[str, bool]:
    """The query parameters a route accepts (its dependencies' included): name -> is an integer."""
    rules = {
        getattr(param, "alias", None) or param.name: _is_integer(param.field_info.annotation)
        for param in dependant.query_params
    }
    for sub in dependant.dependencies:
        rules.update(_query_rules(sub))
    return rules


async def check_query_parameters(request: Request) -> None:
    """A router dependency: query parameters are checked as strictly as JSON bodies.

    `async def` so that FastAPI runs it on the event loop: it is cheap, and a plain `def` would
    cost every request a round trip through the thread pool.

    An unknown name is a 422 rather than silently ignored (a typo such as
    `/v1/openrlhf?presets=mentor-f1` would otherwise train with the default reward); so is a
    parameter given twice, and an integer written as anything but an integer (`step=7.0`).
    """
    if not request.query_params:
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    rules = _QUERY_RULES.get(id(dependant))
    if rules is None:
        rules = _QUERY_RULES[id(dependant)] = _query_rules(dependant)
    for name in request.query_params:
        if name not in rules:
            accepted = ", ".join(sorted(rules)) or "none"
            raise ApiError(
                422,
                f"unknown query parameter {name!r} (accepted: {accepted})",
                type="validation_error",
                param=name,
            )
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise ApiError(422, f"query parameter {name!r} is given more than once", param=name)
        if rules[name] and not _INTEGER.fullmatch(values[0]):
            raise ApiError(422, f"query parameter {name!r} must be an integer", param=name)
