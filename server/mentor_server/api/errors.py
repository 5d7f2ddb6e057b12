"""One error body for every failure: `{"error": {"type", "message", "param"}}` (protocol.ErrorResponse).

Routes raise `ApiError` (or let `ScoringConfigError` escape); FastAPI's own failures (validation,
unknown routes, bodies that are not JSON) are translated by the handlers registered here, so a
client only ever has to read one shape. `ERROR_RESPONSES` declares that shape in the OpenAPI
schema for every route.

Status codes:
- 400 `invalid_config`: an unknown preset/toolset/parser, a malformed spec, or no reward named
  (`param` names the field); 400 `unknown_field`: a request field the service does not know;
- 401 `unauthorized`: a missing or wrong API key;
- 404 `not_found`: an unknown route, preset or toolset in the path;
- 413 `too_large` / `too_many_items`: the body or the batch is over its limit (the limit is stated);
- 422 `invalid_json` / `validation_error` / `too_deep`: the body is not UTF-8 JSON, violates the
  schema, or nests deeper than allowed;
- 500 `internal_error`: a bug; the message names the exception type, never a traceback;
- 503 `not_ready`: the scoring workers are not up.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from mentor_client.protocol import ErrorResponse

from ..scoring.types import ScoringConfigError, field_path
from .pool import PoolUnavailable

log = logging.getLogger("mentor_server.api")

_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "not_ready",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with the service's error body. A subclass of Starlette's HTTPException so
    that FastAPI lets it through unchanged when it is raised while the body is being read."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.type = type or _STATUS_TYPES.get(status_code, "error")
        self.message = message
        self.param = param


def error_body(type: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"type": type, "message": message, "param": param}}


_SURROGATE = re.compile("[\ud800-\udfff]")


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a string holding a lone surrogate (a model can emit one, and
    an answer may echo it) has it replaced by U+FFFD, instead of failing to encode, which with
    the default renderer turns the whole answer into a 500. (An escaped `\\ud800` would not
    do: strict JSON parsers, pydantic's among them, refuse a lone surrogate escape.)"""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def error_response(
    status_code: int,
    type: str,
    message: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return SafeJSONResponse(error_body(type, message, param), status_code=status_code, headers=headers)


def error_bytes(type: str, message: str, param: str | None = None) -> bytes:
    """The error body as bytes, for ASGI middleware that answers before FastAPI is reached."""
    return json.dumps(error_body(type, message, param)).encode()


def _describe(text: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": text}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _describe("Invalid configuration: unknown preset, toolset or parser, or a malformed spec."),
    401: _describe("Missing or wrong API key (only when the service has keys configured)."),
    404: _describe("Not found."),
    413: _describe("Body or batch over the service's limit; the message states the limit."),
    422: _describe("Body is not UTF-8 JSON, violates the schema, or nests too deeply."),
    500: _describe("Unexpected server error."),
    503: _describe("The scoring processes are not running (starting, or failed to start)."),
}
"""Declared on every router so the OpenAPI schema shows the one error body; `docs_ui` then
keeps in each route's list only the statuses that route can answer."""


# Pydantic puts the member of a union it tried into the error location (`completion.str`,
# `ground_truth.list[str]`, `reference.ReferenceModel`); these are types, not fields. The wire
# models name fields in snake_case, so a bracketed, CamelCase or builtin-type name is a tag.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|bytes|any|[a-z-]+\[.*\]|function-.*|[A-Z]\w*)$")


def loc_to_param(loc: Sequence[Any]) -> str | None:
    """`("body", "items", 0, "completion", "str")` -> `"items[0].completion"` (the request's field path)."""
    parts = [part for part in loc if not (isinstance(part, str) and _UNION_TAG.match(part))]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return field_path(parts) or None


# ---------------------------------------------------------------------------- handlers
async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.type, exc.message, exc.param, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = _STATUS_TYPES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    return error_response(exc.status_code, kind, message, None, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:
        return error_response(422, "validation_error", "the request is invalid")
    first = errors[0]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "malformed JSON")
        return error_response(422, "invalid_json", f"the body is not valid JSON: {detail}", None)
    # The request envelope is strict (protocol module): an unknown field, or a reward left
    # unnamed, is the caller's configuration mistake, a 400 naming the field.
    for error in errors:
        if error.get("type") == "extra_forbidden":
            param = loc_to_param(error.get("loc", ()))
            return error_response(400, "unknown_field", f"unknown field '{param}' in the request body", param)
    for error in errors:
        if error.get("type") == "value_error" and "name the reward" in str(error.get("msg", "")):
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            return error_response(400, "invalid_config", message, "preset")
    # Group by field: the alternatives of one union field are one problem, stated once.
    # A deeper location under an earlier one (`completion.0` under `completion`: the list
    # alternative of a str-or-list field) is the same problem, described relative to it.
    by_param: dict[str | None, list[str]] = {}
    for error in errors:
        where = loc_to_param(error.get("loc", ()))
        text = str(error.get("msg", "invalid value"))
        for known in by_param:
            if known and where and where.startswith(known + "."):
                text = f"{where[len(known) + 1 :]}: {text}"
                where = known
                break
        messages = by_param.setdefault(where, [])
        if text not in messages:
            messages.append(text)
    param, messages = next(iter(by_param.items()))
    message = " or ".join(messages)
    if param:
        message = f"{param}: {message}"
    if len(by_param) > 1:
        more = len(by_param) - 1
        message += f" (and {more} more field{'s' if more > 1 else ''})"
    return error_response(422, "validation_error", message, param)


async def _config_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScoringConfigError)
    return error_response(400, "invalid_config", str(exc), exc.param)


async def _pool_unavailable(request: Request, exc: Exception) -> Response:
    return error_response(503, "not_ready", str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", f"unexpected server error ({type(exc).__name__})")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ScoringConfigError, _config_error)
    app.add_exception_handler(PoolUnavailable, _pool_unavailable)
    app.add_exception_handler(Exception, _unexpected)


# ---------------------------------------------------------------------------- JSON decoding
def _body_error(cause: BaseException) -> ApiError | None:
    """Name why `json.loads` refused a body (FastAPI would answer a bare 400)."""
    if isinstance(cause, UnicodeDecodeError):
        return ApiError(422, "the body is not valid UTF-8", type="invalid_json")
    if isinstance(cause, RecursionError):
        return ApiError(422, "the body nests too deeply to parse", type="too_deep")
    if isinstance(cause, ValueError):
        # e.g. an integer literal over Python's 4300-digit conversion limit
        return ApiError(422, f"the body is not acceptable JSON: {cause}", type="invalid_json")
    return None


class JSONErrorRoute(APIRoute):
    """An APIRoute whose body-decoding failures become 422s with the error body.

    FastAPI maps `JSONDecodeError` to a validation error but every other decoding failure
    (invalid UTF-8, a 100k-digit number, nesting past the recursion limit) to a bare 400;
    here each gets a 422 that says what was wrong.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decode_errors_as_422(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                if exc.status_code == 400 and not isinstance(exc, ApiError) and exc.__cause__ is not None:
                    translated = _body_error(exc.__cause__)
                    if translated is not None:
                        raise translated from exc.__cause__
                raise

        return decode_errors_as_422
