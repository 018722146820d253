"""How error answers become SDK exceptions, and small helpers of the SDK."""

from __future__ import annotations

import pytest

from mqtthub.client import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HubError,
    Message,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from mqtthub.client._calls import base_url_of, unsubscribe
from mqtthub.client._exceptions import error_for
from mqtthub.client._stream import stream_url


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ValidationError),
        (429, RateLimitedError),
        (503, ServiceUnavailableError),
        (500, ServerError),
        (502, ServerError),
        (418, APIError),
    ],
)
def test_status_codes_map_to_the_tree(status: int, cls: type[APIError]) -> None:
    error = error_for(status, {"success": False, "error": "nope", "code": "x", "detail": "nope"})
    assert type(error) is cls
    assert isinstance(error, HubError)
    assert (error.status_code, error.code, error.message) == (status, "x", "nope")
    assert str(error) == f"{status}: nope"


def test_validation_details_are_kept() -> None:
    body = {"detail": [{"loc": ["body", "topic"], "msg": "Field required", "type": "missing"}]}
    error = error_for(422, body)
    assert isinstance(error, ValidationError)
    assert error.message == "Field required"
    assert error.errors[0]["loc"] == ["body", "topic"]
    assert error.code is None


def test_retry_after_is_parsed() -> None:
    error = error_for(429, {"error": "slow down"}, "3")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 3.0
    unparsable = error_for(429, {"error": "slow down"}, "soon")
    assert isinstance(unparsable, RateLimitedError)
    assert unparsable.retry_after is None


def test_text_bodies_become_the_message() -> None:
    assert error_for(502, "Bad Gateway").message == "Bad Gateway"
    assert error_for(500, "").message == "HTTP 500"


def test_urls() -> None:
    assert stream_url("http://h:8000") == "ws://h:8000/ws"
    assert stream_url("https://h") == "wss://h/ws"
    assert stream_url("ws://h:1/ws") == "ws://h:1/ws"
    assert base_url_of("http://x:1/") == "http://x:1"


def test_base_url_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MQTTHUB_URL", raising=False)
    assert base_url_of(None) == "http://localhost:8000"
    monkeypatch.setenv("MQTTHUB_URL", "http://elsewhere:9000/")
    assert base_url_of(None) == "http://elsewhere:9000"


def test_filters_are_url_encoded_in_unsubscribe() -> None:
    assert unsubscribe("factory/+/line/#").path == "/subscribe/factory%2F%2B%2Fline%2F%23"


def test_message_payload_bytes() -> None:
    common = {"topic": "t", "qos": 0, "retain": False, "timestamp": "2026-01-01T00:00:00Z"}
    assert Message.model_validate({**common, "payload": "gAE=", "payload_encoding": "base64"}).payload_bytes == (
        b"\x80\x01"
    )
    assert Message.model_validate({**common, "payload": "héllo"}).payload_bytes == "héllo".encode()
