"""What each SDK method sends and what it reads back, shared by the sync and the async client."""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError as PydanticValidationError

from mqtthub.client._exceptions import HubConnectionError, error_for
from mqtthub.client._identity_models import (
    Certificate,
    CertificateIssued,
    CertificateList,
    Device,
    DeviceList,
    DeviceToken,
    DeviceTokenCreated,
    DeviceTokenList,
    MqttToken,
    MqttTokenCreated,
    MqttTokenList,
    MqttTokenRevoked,
    User,
    UserList,
)
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
from mqtthub.client._product_models import ConnectionTest, Product, ProductList
from mqtthub.client._telemetry_models import Broadcast, Command, CommandPage, DeviceStatus, ReadingPage

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
    also_ok: tuple[int, ...] = ()
    """Error statuses whose body is still read into ``model`` when it fits (a degraded ``/health``)."""
    envelope: bool = False
    """The answer is ``{"success": true, "data": ...}`` and ``model`` reads ``data``."""


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
        if response.status_code in call.also_ok and call.model is not None:
            with contextlib.suppress(PydanticValidationError):
                return call.model.model_validate(body)  # type: ignore[attr-defined,no-any-return]
        raise error_for(response.status_code, body, response.headers.get("retry-after"))
    if call.model is None:
        return None  # type: ignore[return-value]
    body = response.json()
    data = body["data"] if call.envelope else body
    if call.model is dict:
        return data  # type: ignore[no-any-return]
    model: Any = call.model
    return model.model_validate(data)  # type: ignore[no-any-return]


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
    return Call("GET", "/health", Health, also_ok=(503,))


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


def _org(org_id: str, *parts: str) -> str:
    return "/".join(["/api/v1/organizations", quote(org_id, safe=""), *(quote(part, safe="") for part in parts)])


def create_organization(name: str, short_id: str | None) -> Call[Organization]:
    return Call("POST", "/api/v1/organizations", Organization, json=_without_none({"name": name, "short_id": short_id}))


def rename_organization(org_id: str, name: str) -> Call[Organization]:
    return Call("PATCH", _org(org_id), Organization, json={"name": name})


def delete_organization(org_id: str) -> Call[None]:
    return Call("DELETE", _org(org_id), None)


def create_user(org_id: str, email: str, password: str, role: str) -> Call[User]:
    return Call("POST", _org(org_id, "users"), User, json={"email": email, "password": password, "role": role})


def users(org_id: str) -> Call[UserList]:
    return Call("GET", _org(org_id, "users"), UserList)


def update_user(org_id: str, user_id: str, role: str | None, is_active: bool | None) -> Call[User]:
    return Call(
        "PATCH", _org(org_id, "users", user_id), User, json=_without_none({"role": role, "is_active": is_active})
    )


def create_device(org_id: str, name: str, metadata: dict[str, Any] | None, enabled: bool) -> Call[Device]:
    body = {"name": name, "metadata": metadata or {}, "enabled": enabled}
    return Call("POST", _org(org_id, "devices"), Device, json=body)


def devices(org_id: str) -> Call[DeviceList]:
    return Call("GET", _org(org_id, "devices"), DeviceList)


def device(org_id: str, device_id: str) -> Call[Device]:
    return Call("GET", _org(org_id, "devices", device_id), Device)


def update_device(
    org_id: str, device_id: str, name: str | None, metadata: dict[str, Any] | None, enabled: bool | None
) -> Call[Device]:
    body = _without_none({"name": name, "metadata": metadata, "enabled": enabled})
    return Call("PATCH", _org(org_id, "devices", device_id), Device, json=body)


def delete_device(org_id: str, device_id: str) -> Call[None]:
    return Call("DELETE", _org(org_id, "devices", device_id), None)


def create_device_token(
    org_id: str, device_id: str, name: str, expires_in_days: int | None
) -> Call[DeviceTokenCreated]:
    body = _without_none({"name": name, "expires_in_days": expires_in_days})
    return Call("POST", _org(org_id, "devices", device_id, "tokens"), DeviceTokenCreated, json=body)


def device_tokens(org_id: str, device_id: str) -> Call[DeviceTokenList]:
    return Call("GET", _org(org_id, "devices", device_id, "tokens"), DeviceTokenList)


def revoke_device_token(org_id: str, device_id: str, token_id: str) -> Call[DeviceToken]:
    return Call("DELETE", _org(org_id, "devices", device_id, "tokens", token_id), DeviceToken)


def create_mqtt_token(
    org_id: str,
    name: str,
    description: str,
    expires_in_days: int | None,
    subscribe: list[str] | None,
    publish: list[str] | None,
) -> Call[MqttTokenCreated]:
    body: dict[str, Any] = _without_none({"name": name, "description": description, "expires_in_days": expires_in_days})
    permissions = _without_none({"subscribe": subscribe, "publish": publish})
    if permissions:
        body["permissions"] = permissions
    return Call("POST", _org(org_id, "mqtt-tokens"), MqttTokenCreated, json=body)


def mqtt_tokens(org_id: str) -> Call[MqttTokenList]:
    return Call("GET", _org(org_id, "mqtt-tokens"), MqttTokenList)


def mqtt_token(org_id: str, token_id: str) -> Call[MqttToken]:
    return Call("GET", _org(org_id, "mqtt-tokens", token_id), MqttToken)


def revoke_mqtt_token(org_id: str, token_id: str) -> Call[MqttTokenRevoked]:
    return Call("DELETE", _org(org_id, "mqtt-tokens", token_id), MqttTokenRevoked)


def my_certificate() -> Call[CertificateIssued]:
    return Call("POST", "/api/v1/auth/mqtt-certificate", CertificateIssued)


def device_certificate(org_id: str, device_id: str) -> Call[CertificateIssued]:
    return Call("POST", _org(org_id, "devices", device_id, "certificate"), CertificateIssued)


def certificates(org_id: str) -> Call[CertificateList]:
    return Call("GET", _org(org_id, "certificates"), CertificateList)


def revoke_certificate(org_id: str, serial: str) -> Call[Certificate]:
    return Call("DELETE", _org(org_id, "certificates", serial), Certificate)


def send_command(device_id: str, command: str, parameters: dict[str, Any] | None) -> Call[Command]:
    body = {"command": command, "parameters": parameters or {}}
    return Call("POST", f"/api/v1/devices/{quote(device_id, safe='')}/commands", Command, json=body, envelope=True)


def commands(device_id: str, status: str | None, limit: int, offset: int) -> Call[CommandPage]:
    params = _without_none({"status": status, "limit": limit, "offset": offset})
    return Call("GET", f"/api/v1/devices/{quote(device_id, safe='')}/commands", CommandPage, params=params)


def command(command_id: str) -> Call[Command]:
    return Call("GET", f"/api/v1/commands/{quote(command_id, safe='')}", Command, envelope=True)


def device_status(device_id: str) -> Call[DeviceStatus]:
    return Call("GET", f"/api/v1/devices/{quote(device_id, safe='')}/status", DeviceStatus, envelope=True)


def datastreams(
    device_id: str,
    sensor: str | None,
    start: datetime | str | None,
    end: datetime | str | None,
    limit: int,
    offset: int,
    bucket: str | None,
) -> Call[ReadingPage]:
    path = f"/api/v1/devices/{quote(device_id, safe='')}/datastreams"
    if sensor is not None:
        path += "/" + quote(sensor, safe="/")
    params = _without_none({"from": _time(start), "to": _time(end), "limit": limit, "offset": offset, "bucket": bucket})
    return Call("GET", path, ReadingPage, params=params)


def broadcast(org_id: str, message: Any, qos: int) -> Call[Broadcast]:
    path = f"/api/v1/organizations/{quote(org_id, safe='')}/broadcast"
    return Call("POST", path, Broadcast, json={"message": message, "qos": qos}, envelope=True)


def _product(product_id: str, *parts: str) -> str:
    return "/".join(["/api/v1/products", quote(product_id, safe=""), *(quote(part, safe="") for part in parts)])


def create_product(name: str, description: str | None, organization_id: str | None) -> Call[Product]:
    body = _without_none({"name": name, "description": description, "organization_id": organization_id})
    return Call("POST", "/api/v1/products", Product, json=body)


def products() -> Call[ProductList]:
    return Call("GET", "/api/v1/products", ProductList)


def product(product_id: str) -> Call[Product]:
    return Call("GET", _product(product_id), Product)


def update_product(product_id: str, name: str | None, description: str | None) -> Call[Product]:
    return Call("PATCH", _product(product_id), Product, json=_without_none({"name": name, "description": description}))


def delete_product(product_id: str) -> Call[None]:
    return Call("DELETE", _product(product_id), None)


def mqtt_config(product_id: str) -> Call[dict[str, Any]]:
    return Call("GET", _product(product_id, "mqtt-config"), dict)


def put_mqtt_config(product_id: str, broker: dict[str, Any], topics: dict[str, Any] | None) -> Call[dict[str, Any]]:
    body = _without_none({"broker": broker, "topics": topics})
    return Call("PUT", _product(product_id, "mqtt-config"), dict, json=body)


def delete_mqtt_config(product_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", _product(product_id, "mqtt-config"), dict)


def test_mqtt_connection(product_id: str, broker: dict[str, Any]) -> Call[ConnectionTest]:
    return Call("POST", _product(product_id, "mqtt-config", "test"), ConnectionTest, json=broker)


def reconnect_mqtt(product_id: str) -> Call[dict[str, Any]]:
    return Call("POST", _product(product_id, "mqtt-config", "reconnect"), dict)


def mqtt_status(product_id: str) -> Call[dict[str, Any]]:
    return Call("GET", _product(product_id, "mqtt-config", "status"), dict)


def event_subscriptions(product_id: str) -> Call[dict[str, Any]]:
    return Call("GET", _product(product_id, "mqtt-config", "subscriptions"), dict)


def create_event_subscription(product_id: str, spec: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", _product(product_id, "mqtt-config", "subscriptions"), dict, json=spec)


def update_event_subscription(product_id: str, subscription_id: str, changes: dict[str, Any]) -> Call[dict[str, Any]]:
    path = _product(product_id, "mqtt-config", "subscriptions", subscription_id)
    return Call("PUT", path, dict, json=changes)


def delete_event_subscription(product_id: str, subscription_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", _product(product_id, "mqtt-config", "subscriptions", subscription_id), dict)


def raw(method: str, path: str, params: dict[str, Any] | None, json: Any) -> Call[Any]:
    return Call(method.upper(), path if path.startswith("/") else "/" + path, None, params or {}, json)
