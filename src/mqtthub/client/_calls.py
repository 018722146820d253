"""What each SDK method sends and what it reads back, shared by the sync and the async client."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from mqtthub.client._exceptions import HubConnectionError, error_for
from mqtthub.client._models import (
    Health,
    MessagePage,
    Organization,
    OrganizationList,
    PublishResult,
    ServiceInfo,
    Session,
    Stats,
    SubscriptionResult,
    TopicList,
)

T = TypeVar("T")

DEFAULT_URL = "http://localhost:8000"
Payload = str | bytes | int | float | bool | dict[str, Any] | list[Any] | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and the model its JSON answer is read into (``None``: no body)."""

    method: str
    path: str
    model: type[T] | None
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


def base_url_of(url: str | None) -> str:
    """The base URL: the argument, else ``MQTTHUB_URL``, else ``http://localhost:8000``; no trailing slash."""
    return (url or os.environ.get("MQTTHUB_URL") or DEFAULT_URL).rstrip("/")


def auth_headers(api_key: str | None, token: str | None) -> dict[str, str]:
    """``X-API-Key`` and/or ``Authorization: Bearer`` for the given credentials."""
    headers: dict[str, str] = {}
    if api_key:
        headers["X-API-Key"] = api_key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def read(call: Call[T], response: httpx.Response) -> T:
    """The model of a successful answer, or the :class:`APIError` of a failed one."""
    if response.status_code >= 400:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise error_for(response.status_code, body, response.headers.get("retry-after"))
    if call.model is None:
        return None  # type: ignore[return-value]
    model: Any = call.model
    return model.model_validate(response.json())  # type: ignore[no-any-return]


def connection_error(exc: httpx.TransportError, base_url: str) -> HubConnectionError:
    """The SDK's form of an httpx transport failure."""
    return HubConnectionError(f"cannot reach the hub at {base_url}: {exc!r}")


def _payload_fields(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, bytes | bytearray):
        return {"payload": base64.b64encode(payload).decode("ascii"), "payload_encoding": "base64"}
    return {"payload": payload}


def _time(moment: datetime | str | None) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def service_info() -> Call[ServiceInfo]:
    return Call("GET", "/", ServiceInfo)


def health() -> Call[Health]:
    # /health answers 503 with the same body when degraded; read() raises ServiceUnavailableError then.
    return Call("GET", "/health", Health)


def publish(topic: str, payload: Payload, qos: int, retain: bool) -> Call[PublishResult]:
    return Call(
        "POST",
        "/publish",
        PublishResult,
        json={"topic": topic, "qos": qos, "retain": retain, **_payload_fields(payload)},
    )


def subscribe(topic: str, qos: int) -> Call[SubscriptionResult]:
    return Call("POST", "/subscribe", SubscriptionResult, json={"topic": topic, "qos": qos})


def unsubscribe(topic: str) -> Call[SubscriptionResult]:
    return Call("DELETE", "/subscribe/" + quote(topic, safe=""), SubscriptionResult)


def messages(
    topic: str | None, limit: int, offset: int, since: datetime | str | None, until: datetime | str | None
) -> Call[MessagePage]:
    params = _without_none(
        {"topic": topic, "limit": limit, "offset": offset, "since": _time(since), "until": _time(until)}
    )
    return Call("GET", "/messages", MessagePage, params=params)


def topics() -> Call[TopicList]:
    return Call("GET", "/topics", TopicList)


def stats() -> Call[Stats]:
    return Call("GET", "/stats", Stats)


def login(email: str, password: str) -> Call[Session]:
    return Call("POST", "/api/v1/auth/login", Session, json={"email": email, "password": password})


def organizations() -> Call[OrganizationList]:
    return Call("GET", "/api/v1/organizations", OrganizationList)


def organization(org_id: str) -> Call[Organization]:
    return Call("GET", f"/api/v1/organizations/{quote(org_id, safe='')}", Organization)


def raw(method: str, path: str, params: dict[str, Any] | None, json: Any) -> Call[Any]:
    return Call(method.upper(), path if path.startswith("/") else "/" + path, None, params or {}, json)
