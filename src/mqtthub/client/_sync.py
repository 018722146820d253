"""``HubClient``: the synchronous SDK client."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from mqtthub.client import _calls as calls
from mqtthub.client._calls import Call, Payload
from mqtthub.client._exceptions import ClientStateError
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


class HubClient:
    """A synchronous client of a running hub, over httpx.

    Use it as a context manager (``with HubClient(url, api_key=...) as hub:``) or call
    :meth:`close` when done. Every method returns a typed model or raises a
    :class:`~mqtthub.client.HubError`.

    Args:
        base_url: The hub's HTTP address; defaults to ``MQTTHUB_URL`` or ``http://localhost:8000``.
        api_key: An MQTT API token of the organization, sent as ``X-API-Key``.
        token: A session token (from :meth:`login`) or an MQTT API token, sent as a bearer token.
        timeout: Seconds for each request.
        transport: An httpx transport (for example to route requests elsewhere in tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = calls.base_url_of(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=calls.auth_headers(api_key, token),
            timeout=timeout,
            transport=transport,
        )
        self._entered = False

    def __enter__(self) -> Self:
        if self._entered or self._http.is_closed:
            raise ClientStateError("this client was already opened; create a new one")
        self._entered = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        if self._http.is_closed:
            raise ClientStateError("this client is closed")
        try:
            response = self._http.request(call.method, call.path, params=call.params or None, json=call.json)
        except httpx.TransportError as exc:
            raise calls.connection_error(exc, self.base_url) from exc
        return calls.read(call, response)

    # --- service -------------------------------------------------------------------------------------

    def get_service_info(self) -> ServiceInfo:
        """``GET /``: name, version and links."""
        return self._run(calls.service_info())

    def health_check(self) -> Health:
        """``GET /health``: the report, also when the hub is degraded (``status == "degraded"``, HTTP 503)."""
        return self._run(calls.health())

    # --- messaging -----------------------------------------------------------------------------------

    def publish(self, topic: str, payload: Payload = "", *, qos: int = 0, retain: bool = False) -> PublishResult:
        """Publish to ``topic``; bytes go as base64, other non-strings as JSON text."""
        return self._run(calls.publish(topic, payload, qos, retain))

    def subscribe(self, topic: str, *, qos: int = 0) -> SubscriptionResult:
        """Have the hub record the messages of a topic filter (``+``/``#`` allowed)."""
        return self._run(calls.subscribe(topic, qos))

    def unsubscribe(self, topic: str) -> SubscriptionResult:
        """Stop recording a topic filter."""
        return self._run(calls.unsubscribe(topic))

    def get_messages(
        self,
        topic: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> MessagePage:
        """A page of the history, newest first, optionally for a topic or filter and a time range."""
        return self._run(calls.messages(topic, limit, offset, since, until))

    def get_topics(self) -> TopicList:
        """Topics of the history and the recorded filters."""
        return self._run(calls.topics())

    def get_stats(self) -> Stats:
        """Message statistics of the caller's organization."""
        return self._run(calls.stats())

    # --- identity ------------------------------------------------------------------------------------

    def login(self, email: str, password: str) -> Session:
        """Log in; later calls of this client send the session token."""
        session = self._run(calls.login(email, password))
        self._http.headers["Authorization"] = f"Bearer {session.token}"
        return session

    def list_organizations(self) -> OrganizationList:
        """Organizations visible to the logged-in user."""
        return self._run(calls.organizations())

    def get_organization(self, org_id: str) -> Organization:
        """One organization."""
        return self._run(calls.organization(org_id))

    def create_organization(self, name: str, *, short_id: str | None = None) -> Organization:
        """Create an organization (platform administrators)."""
        return self._run(calls.create_organization(name, short_id))

    def rename_organization(self, org_id: str, name: str) -> Organization:
        """Rename an organization (platform administrators)."""
        return self._run(calls.rename_organization(org_id, name))

    def delete_organization(self, org_id: str) -> None:
        """Delete an organization with everything in it (platform administrators)."""
        self._run(calls.delete_organization(org_id))

    def create_user(self, org_id: str, email: str, password: str, *, role: str = "org_member") -> User:
        """Add a user to an organization (``org_member`` or ``org_admin``)."""
        return self._run(calls.create_user(org_id, email, password, role))

    def list_users(self, org_id: str) -> UserList:
        """Users of an organization."""
        return self._run(calls.users(org_id))

    def update_user(self, org_id: str, user_id: str, *, role: str | None = None, is_active: bool | None = None) -> User:
        """Change a user's role or deactivate them."""
        return self._run(calls.update_user(org_id, user_id, role, is_active))

    # --- devices and their credentials -----------------------------------------------------------------

    def create_device(
        self, org_id: str, name: str, *, metadata: dict[str, Any] | None = None, enabled: bool = True
    ) -> Device:
        """Register a device."""
        return self._run(calls.create_device(org_id, name, metadata, enabled))

    def list_devices(self, org_id: str) -> DeviceList:
        """Devices of an organization."""
        return self._run(calls.devices(org_id))

    def get_device(self, org_id: str, device_id: str) -> Device:
        """One device."""
        return self._run(calls.device(org_id, device_id))

    def update_device(
        self,
        org_id: str,
        device_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> Device:
        """Rename, re-describe, enable or disable a device."""
        return self._run(calls.update_device(org_id, device_id, name, metadata, enabled))

    def delete_device(self, org_id: str, device_id: str) -> None:
        """Delete a device (its connections end)."""
        self._run(calls.delete_device(org_id, device_id))

    def create_device_token(
        self, org_id: str, device_id: str, *, name: str = "", expires_in_days: int | None = None
    ) -> DeviceTokenCreated:
        """Issue a device token (its MQTT password); the secret is in the answer only."""
        return self._run(calls.create_device_token(org_id, device_id, name, expires_in_days))

    def list_device_tokens(self, org_id: str, device_id: str) -> DeviceTokenList:
        """A device's tokens, without secrets."""
        return self._run(calls.device_tokens(org_id, device_id))

    def revoke_device_token(self, org_id: str, device_id: str, token_id: str) -> DeviceToken:
        """Revoke a device token."""
        return self._run(calls.revoke_device_token(org_id, device_id, token_id))

    def create_mqtt_token(
        self,
        org_id: str,
        name: str,
        *,
        description: str = "",
        expires_in_days: int | None = None,
        subscribe: list[str] | None = None,
        publish: list[str] | None = None,
    ) -> MqttTokenCreated:
        """Issue an MQTT API token for an app (subscribe-only unless ``publish`` is given)."""
        return self._run(calls.create_mqtt_token(org_id, name, description, expires_in_days, subscribe, publish))

    def list_mqtt_tokens(self, org_id: str) -> MqttTokenList:
        """An organization's MQTT API tokens, without secrets."""
        return self._run(calls.mqtt_tokens(org_id))

    def get_mqtt_token(self, org_id: str, token_id: str) -> MqttToken:
        """One MQTT API token."""
        return self._run(calls.mqtt_token(org_id, token_id))

    def revoke_mqtt_token(self, org_id: str, token_id: str) -> MqttTokenRevoked:
        """Revoke an MQTT API token; its connections end."""
        return self._run(calls.revoke_mqtt_token(org_id, token_id))

    def request_certificate(self) -> CertificateIssued:
        """A client certificate for the logged-in user (document 003's shape)."""
        return self._run(calls.my_certificate())

    def issue_device_certificate(self, org_id: str, device_id: str) -> CertificateIssued:
        """A client certificate for a device."""
        return self._run(calls.device_certificate(org_id, device_id))

    def list_certificates(self, org_id: str) -> CertificateList:
        """Client certificates of an organization."""
        return self._run(calls.certificates(org_id))

    def revoke_certificate(self, org_id: str, serial: str) -> Certificate:
        """Revoke a client certificate."""
        return self._run(calls.revoke_certificate(org_id, serial))

    # --- telemetry and commands ------------------------------------------------------------------------

    def send_command(self, device_id: str, command: str, parameters: dict[str, Any] | None = None) -> Command:
        """Send a command to a device (QoS 1 on ``devices/{id}/commands``); it starts ``pending``."""
        return self._run(calls.send_command(device_id, command, parameters))

    def list_commands(
        self, device_id: str, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> CommandPage:
        """A device's commands, newest first, optionally of one status."""
        return self._run(calls.commands(device_id, status, limit, offset))

    def get_command(self, command_id: str) -> Command:
        """One command and its status."""
        return self._run(calls.command(command_id))

    def get_device_status(self, device_id: str) -> DeviceStatus:
        """A device's last reported status and whether it is connected now."""
        return self._run(calls.device_status(device_id))

    def get_datastreams(
        self,
        device_id: str,
        sensor: str | None = None,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        limit: int = 100,
        offset: int = 0,
        bucket: str | None = None,
    ) -> ReadingPage:
        """A device's telemetry history (one sensor's with ``sensor``), newest first; ``bucket`` (``5m``,
        ``1h``…) returns per-bucket min/max/avg/count instead."""
        return self._run(calls.datastreams(device_id, sensor, start, end, limit, offset, bucket))

    def broadcast(self, org_id: str, message: Any, *, qos: int = 1) -> Broadcast:
        """Send ``message`` to every device of an organization."""
        return self._run(calls.broadcast(org_id, message, qos))

    # --- products and their outbound MQTT integrations (document 002's JSON as dictionaries) ----------

    def create_product(
        self, name: str, *, description: str | None = None, organization_id: str | None = None
    ) -> Product:
        """Create a product in the caller's organization (a platform admin may name another)."""
        return self._run(calls.create_product(name, description, organization_id))

    def list_products(self) -> ProductList:
        """Products visible to the caller."""
        return self._run(calls.products())

    def get_product(self, product_id: str) -> Product:
        """One product."""
        return self._run(calls.product(product_id))

    def update_product(self, product_id: str, *, name: str | None = None, description: str | None = None) -> Product:
        """Rename or re-describe a product."""
        return self._run(calls.update_product(product_id, name, description))

    def delete_product(self, product_id: str) -> None:
        """Delete a product with its configuration and subscriptions; its connector stops."""
        self._run(calls.delete_product(product_id))

    def get_mqtt_config(self, product_id: str) -> dict[str, Any]:
        """The product's outbound MQTT configuration (passwords masked) with its subscriptions."""
        return self._run(calls.mqtt_config(product_id))

    def put_mqtt_config(
        self, product_id: str, broker: dict[str, Any], topics: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create or replace the product's MQTT configuration; the connector (re)starts."""
        return self._run(calls.put_mqtt_config(product_id, broker, topics))

    def delete_mqtt_config(self, product_id: str) -> dict[str, Any]:
        """Remove the product's MQTT configuration; the connector stops."""
        return self._run(calls.delete_mqtt_config(product_id))

    def test_mqtt_connection(self, product_id: str, broker: dict[str, Any]) -> ConnectionTest:
        """Try to connect to a broker with the given settings, without saving them."""
        return self._run(calls.test_mqtt_connection(product_id, broker))

    def reconnect_mqtt(self, product_id: str) -> dict[str, Any]:
        """Make the product's connector reconnect now."""
        return self._run(calls.reconnect_mqtt(product_id))

    def get_mqtt_status(self, product_id: str) -> dict[str, Any]:
        """The product's connection status and statistics."""
        return self._run(calls.mqtt_status(product_id))

    def list_event_subscriptions(self, product_id: str) -> dict[str, Any]:
        """The product's event subscriptions."""
        return self._run(calls.event_subscriptions(product_id))

    def create_event_subscription(self, product_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Add an event subscription (``{name, variables, enabled, description, actions}``)."""
        return self._run(calls.create_event_subscription(product_id, spec))

    def update_event_subscription(
        self, product_id: str, subscription_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change an event subscription."""
        return self._run(calls.update_event_subscription(product_id, subscription_id, changes))

    def delete_event_subscription(self, product_id: str, subscription_id: str) -> dict[str, Any]:
        """Remove an event subscription."""
        return self._run(calls.delete_event_subscription(product_id, subscription_id))

    # --- anything else -------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """Call any endpoint; returns the decoded JSON body (``None`` for an empty one)."""
        if self._http.is_closed:
            raise ClientStateError("this client is closed")
        call = calls.raw(method, path, params, json)
        try:
            response = self._http.request(call.method, call.path, params=call.params or None, json=call.json)
        except httpx.TransportError as exc:
            raise calls.connection_error(exc, self.base_url) from exc
        calls.read(call, response)
        return response.json() if response.content else None
