"""Every exception the client SDK raises, in one tree.

Users catch these and never a dependency's types: httpx exceptions are translated where the
request is sent (`raise ... from exc`, so the original stays in `__cause__`).

    MentorClientError                    base of everything below
    ├── TransportError                   no usable HTTP answer (DNS, TLS, dropped connection)
    │   ├── ConnectError                 the service could not be reached (retried, fails over)
    │   └── RequestTimeoutError          the request ran past the client's timeout (retried)
    ├── APIError                         the service answered 4xx/5xx: `.status_code`, `.error`
    │   ├── BadRequestError              400, 422: the request itself is wrong (never retried)
    │   ├── AuthenticationError          401, 403: missing or wrong API key (never retried)
    │   ├── NotFoundError                404: unknown path, preset, toolset (never retried)
    │   ├── PayloadTooLargeError         413: lower `chunk_size` (never retried)
    │   ├── RateLimitedError             429: `.retry_after` seconds when the service said
    │   └── ServerError                  5xx (retried)
    ├── RetriesExhaustedError            a retryable failure outlived the retry budget:
    │                                    `.attempts`, `.last_error` (also its `__cause__`)
    ├── ResponseValidationError          a 2xx answer that does not match the wire protocol
    └── ItemScoringError                 an adapter that must return a number got an item error

Other APIError statuses (408, 409, ...) are raised as `APIError` itself. Which failures are
retried is decided in `_base.py`: connection errors, timeouts, 408, 429 and 5xx only.
"""

from __future__ import annotations

from .protocol import ErrorInfo

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConnectError",
    "ItemScoringError",
    "MentorClientError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "RetriesExhaustedError",
    "ServerError",
    "TransportError",
    "api_error_class",
]


class MentorClientError(Exception):
    """Base class of every error raised by `mentor_client`."""


# ---------------------------------------------------------------------------- transport
class TransportError(MentorClientError):
    """The request got no usable HTTP response. `url` is where it was sent."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    """The service could not be reached (refused, DNS, connect timeout)."""


class RequestTimeoutError(TransportError):
    """The client gave up waiting (read, write or pool timeout). Raise `timeout` for big batches."""


# ---------------------------------------------------------------------------- HTTP answers
class APIError(MentorClientError):
    """The service answered with an error status and (usually) an `ErrorResponse` body."""

    def __init__(self, status_code: int, error: ErrorInfo) -> None:
        param = f" (param: {error.param})" if error.param else ""
        super().__init__(f"HTTP {status_code} {error.type}: {error.message}{param}")
        self.status_code = status_code
        self.error = error


class BadRequestError(APIError):
    """400/422: the request is invalid; `error.param` names the field."""


class AuthenticationError(APIError):
    """401/403: the service wants a valid API key (`api_key=` or MENTOR_REWARD_API_KEY)."""


class NotFoundError(APIError):
    """404: unknown path, preset or toolset."""


class PayloadTooLargeError(APIError):
    """413: the request body or item count is over the service's limit; lower `chunk_size`."""


class RateLimitedError(APIError):
    """429: too many requests. `retry_after` is the service's Retry-After in seconds, if any."""

    def __init__(self, status_code: int, error: ErrorInfo, retry_after: float | None = None) -> None:
        super().__init__(status_code, error)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the service failed or is not ready."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: BadRequestError,
    429: RateLimitedError,
}


def api_error_class(status_code: int) -> type[APIError]:
    """The most specific `APIError` subclass for an HTTP status."""
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, APIError)


# ---------------------------------------------------------------------------- after the fact
class RetriesExhaustedError(MentorClientError):
    """A retryable failure (connection, timeout, 408, 429, 5xx) persisted through every retry.

    Raised instead of returning a made-up reward: a reward of 0.0 for a request that never got
    scored would silently corrupt the advantage estimate.
    """

    def __init__(self, attempts: int, last_error: MentorClientError) -> None:
        super().__init__(f"gave up after {attempts} attempt(s); last error: {last_error}")
        self.attempts = attempts
        self.last_error = last_error


class ResponseValidationError(MentorClientError):
    """A successful answer whose body does not match the wire protocol (or the request:
    a wrong number of results, replicas disagreeing on the spec). Usually a version mismatch."""


class ItemScoringError(MentorClientError):
    """An item of the batch could not be scored, and the caller must return a number.

    The TRL adapter returns None ("not applicable") instead; verl and OpenRLHF need a float,
    so their adapters raise this unless MENTOR_REWARD_ON_ERROR gives an explicit fallback.
    """

    def __init__(self, index: int, error: ErrorInfo) -> None:
        param = f" (param: {error.param})" if error.param else ""
        super().__init__(f"item {index} could not be scored: {error.type}: {error.message}{param}")
        self.index = index
        self.error = error
