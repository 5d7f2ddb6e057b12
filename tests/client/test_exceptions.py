"""The exception tree: its shape, its documentation, the status-to-class mapping."""

from __future__ import annotations

import pytest

from mentor_client import exceptions as exc
from mentor_client.protocol import ErrorInfo


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (exc.TransportError, exc.MentorClientError),
        (exc.ConnectError, exc.TransportError),
        (exc.RequestTimeoutError, exc.TransportError),
        (exc.APIError, exc.MentorClientError),
        (exc.BadRequestError, exc.APIError),
        (exc.AuthenticationError, exc.APIError),
        (exc.NotFoundError, exc.APIError),
        (exc.PayloadTooLargeError, exc.APIError),
        (exc.RateLimitedError, exc.APIError),
        (exc.ServerError, exc.APIError),
        (exc.RetriesExhaustedError, exc.MentorClientError),
        (exc.ResponseValidationError, exc.MentorClientError),
        (exc.ItemScoringError, exc.MentorClientError),
    ],
    ids=lambda c: c.__name__,
)
def test_tree_shape(child: type[Exception], parent: type[Exception]) -> None:
    assert child.__mro__[1] is parent


def test_the_module_docstring_draws_every_exception() -> None:
    doc = exc.__doc__ or ""
    for name in exc.__all__:
        if name[0].isupper():
            assert f" {name} " in doc, name


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.AuthenticationError),
        (404, exc.NotFoundError),
        (408, exc.APIError),
        (413, exc.PayloadTooLargeError),
        (418, exc.APIError),
        (422, exc.BadRequestError),
        (429, exc.RateLimitedError),
        (500, exc.ServerError),
        (503, exc.ServerError),
        (599, exc.ServerError),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else v.__name__,
)
def test_status_classes(status: int, expected: type[exc.APIError]) -> None:
    assert exc.api_error_class(status) is expected


def test_messages_name_status_type_and_param() -> None:
    error = exc.BadRequestError(
        422, ErrorInfo(type="invalid_spec", message="weight must be a number", param="w")
    )
    assert str(error) == "HTTP 422 invalid_spec: weight must be a number (param: w)"
    exhausted = exc.RetriesExhaustedError(6, exc.ConnectError("cannot connect", url="http://a"))
    assert str(exhausted) == "gave up after 6 attempt(s); last error: cannot connect"
    item = exc.ItemScoringError(3, ErrorInfo(type="invalid_item", message="bad reference"))
    assert str(item) == "item 3 could not be scored: invalid_item: bad reference"
