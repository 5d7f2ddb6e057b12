"""Request guards: API-key auth, the body-size limit, nesting depth, unknown query parameters.

Auth and the size limit are plain ASGI middleware so that an unauthenticated or oversized request is refused
before the service spends anything on it (FastAPI dependencies only run after the body has
been read and parsed). `check_depth` bounds nesting inside parsed values, because a deeply
nested argument object that JSON accepts would still exhaust the recursion limit of the
pickling, scoring and recording steps downstream.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import typing
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_bytes

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Paths that never need a key: load balancers and orchestrators probe them unauthenticated."""


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
    """Require `Authorization: Bearer <key>` on every path but the health probes.

    Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every configured
    key without stopping early, so the time taken says nothing about how close a guess was.
    """

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self._digests = [hashlib.sha256(key.encode()).digest() for key in keys]

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        candidate = hashlib.sha256(token.strip().encode()).digest()
        ok = False
        for digest in self._digests:
            ok |= hmac.compare_digest(candidate, digest)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if self._authorized(header):
            await self.app(scope, receive, send)
            return
        message = "missing API key: send 'Authorization: Bearer <key>'" if not header else "invalid API key"
        await _send_error(send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")])


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes", type="too_large")


class BodySizeMiddleware:
    """Refuse bodies over `limit` bytes: by Content-Length up front, and by counting the bytes
    actually received (a chunked body, or a client that lies about its length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await _send_error(send, 413, "too_large", BodyTooLarge(self.limit).message)
                    return
                break

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside FastAPI's body read; the ApiError handler turns it into a 413.
                    raise BodyTooLarge(self.limit)
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
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Iterable[Any] = current.values()
        elif isinstance(current, (list, tuple)):
            children = current
        else:
            continue
        if depth >= limit:
            raise ApiError(422, f"{param} nests deeper than {limit} levels", type="too_deep", param=param)
        stack.extend((child, depth + 1) for child in children)


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


def check_query_parameters(request: Request) -> None:
    """A router dependency: query parameters are checked as strictly as JSON bodies.

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
