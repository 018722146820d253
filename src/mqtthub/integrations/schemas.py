"""Request and response bodies of the integrations API (document 002's shapes, plus products and templates).

Response bodies are ``TypedDict`` where the endpoints build them as dictionaries from stored rows (the
stored broker and topics objects, subscription stats, the connection status); FastAPI validates them
and ``/openapi.json`` documents them as it does the models. Field names are document 002's snake_case.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict

from mqtthub.errors import ValidationFailedError
from mqtthub.integrations.action_specs import ActionSpec
from mqtthub.integrations.templates import validate_template

MASK = "***"


class BrokerConfig(BaseModel):
    """The documented ``broker`` object, plus transport and TLS material.

    Secrets (``password``, ``client_key``, ``pkcs12``, ``pkcs12_password``): a new value
    replaces the stored one; an empty string, ``"***"`` or leaving the field out keeps it;
    ``null`` removes it.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253, description="MQTT broker host name or IP.")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port.")
    use_tls: bool = Field(False, description="Connect with TLS.")
    verify_cert: bool = Field(True, description="Verify the broker's certificate and host name.")
    username: str | None = Field(None, max_length=500)
    password: str | None = Field(None, max_length=1000, description="Blank keeps the stored password.")
    client_id: str | None = Field(None, max_length=200, description="Null: generated, stable for this hub instance.")
    keep_alive: int = Field(60, ge=0, le=65535, description="Keep-alive interval in seconds.")
    clean_session: bool = Field(True, description="Start a fresh session on connect (clean start in MQTT 5).")
    protocol: Literal["3.1.1", "5.0"] = Field("3.1.1", description="MQTT protocol version.")
    transport: Literal["tcp", "websockets"] = Field("tcp", description="TCP, or WebSocket (WSS with `use_tls`).")
    ws_path: str = Field("/mqtt", max_length=500, description="WebSocket path.")
    ca_cert: str | None = Field(None, max_length=100_000, description="Extra trusted CA certificates (PEM).")
    client_cert: str | None = Field(None, max_length=100_000, description="Client certificate chain (PEM).")
    client_key: str | None = Field(None, max_length=100_000, description="Private key of `client_cert` (PEM).")
    pkcs12: str | None = Field(None, max_length=200_000, description="Client certificate and key as base64 PKCS#12.")
    pkcs12_password: str | None = Field(None, max_length=1000, description="Password of `pkcs12`.")
    alpn: list[str] | None = Field(None, max_length=10, description='ALPN protocols, e.g. ["x-amzn-mqtt-ca"].')

    @field_validator("pkcs12")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value and value != MASK:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be base64-encoded PKCS#12") from None
        return value

    @field_validator("ca_cert", "client_cert")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value and "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("must be PEM (-----BEGIN CERTIFICATE-----)")
        return value


class TopicsConfig(BaseModel):
    """The documented ``topics`` object, plus ``event_field``."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field("/v3/applications", max_length=500, description="Base topic prefix.")
    pattern: str = Field(
        "{application_id}/business-events", min_length=1, max_length=500, description="Topic pattern with {variables}."
    )
    use_shared: bool = Field(True, description="Subscribe as `$share/{shared_group}/{topic}` (load balancing).")
    shared_group: str = Field("bre", min_length=1, max_length=100, pattern=r"^[^/+#]+$")
    qos: int = Field(1, ge=0, le=2, description="QoS of the subscriptions.")
    event_field: str = Field(
        "event", min_length=1, max_length=200, description="Payload field (dotted path) holding the event name."
    )

    @field_validator("prefix", "pattern")
    @classmethod
    def _no_wildcards(cls, value: str) -> str:
        if "#" in value:
            raise ValueError("'#' is not allowed; use a {variable} for a varying level")
        return value


class MqttConfigIn(BaseModel):
    """``PUT …/mqtt-config``."""

    broker: BrokerConfig
    topics: TopicsConfig = Field(default_factory=TopicsConfig)


class SubscriptionCreate(BaseModel):
    """``POST …/mqtt-config/subscriptions``: a subscription named after the event it handles."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="The event name this subscription handles.")
    variables: dict[str, str] = Field(default_factory=dict, description="Values of the topic pattern's variables.")
    enabled: bool = True
    description: str | None = Field(None, max_length=2000)
    actions: list[ActionSpec] = Field(default_factory=list, max_length=20)


class SubscriptionUpdate(BaseModel):
    """``PUT …/mqtt-config/subscriptions/{sub_id}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    description: str | None = Field(None, max_length=2000)
    variables: dict[str, str] | None = None
    actions: list[ActionSpec] | None = Field(None, max_length=20)


class ProductCreate(BaseModel):
    """``POST /api/v1/products``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    organization_id: str | None = Field(None, description="Defaults to the caller's organization.")


class ProductUpdate(BaseModel):
    """``PATCH /api/v1/products/{id}``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)


class ProductOut(BaseModel):
    """A product."""

    id: str
    organization_id: str
    name: str
    description: str | None
    mqtt_configured: bool
    created_at: datetime
    updated_at: datetime


class EmailTemplateIn(BaseModel):
    """``PUT …/email-templates/{name}``: Jinja2 (sandboxed) subject, body and recipients."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1000)
    body: str = Field(min_length=1, max_length=100_000)
    recipients: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("subject", "body")
    @classmethod
    def _template(cls, value: str) -> str:
        _check(value, "template")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for item in value:
            _check(item, "recipients")
        return value


def _check(value: str, where: str) -> None:
    try:
        validate_template(value, where=where)
    except ValidationFailedError as exc:
        raise ValueError(exc.message) from None


class ConnectionTestResult(BaseModel):
    """``POST …/mqtt-config/test``."""

    status: Literal["success", "error"]
    connected: bool
    latency_ms: int | None
    error: str | None
    details: str
    code: int | None = Field(None, description="The CONNACK return code (3.1.1) or reason code (5.0) on refusal.")


class BrokerConfigOut(BrokerConfig):
    """The stored ``broker`` object as responses show it: secrets ``"***"`` when set, null when not."""

    model_config = ConfigDict(extra="ignore")


class TopicsConfigOut(TopicsConfig):
    """The stored ``topics`` object."""

    model_config = ConfigDict(extra="ignore")


class MqttConfigJson(TypedDict):
    """A product's stored MQTT configuration."""

    id: str
    product_id: str
    broker: BrokerConfigOut
    topics: TopicsConfigOut
    created_at: str
    updated_at: str


class SubscriptionStats(TypedDict):
    """The documented ``stats`` object of a subscription: messages received, actions run and failed."""

    messages_received: int
    last_message_at: str | None
    actions_executed: int
    actions_failed: int


class SubscriptionJson(TypedDict):
    """An event subscription with its actions (as stored) and stats."""

    id: str
    name: str
    topic: str
    variables: dict[str, str]
    enabled: bool
    description: str | None
    actions: list[dict[str, Any]]
    stats: SubscriptionStats
    created_at: str
    updated_at: str


class BrokerInfo(TypedDict):
    """What the connected broker speaks: protocol version and the highest QoS it grants."""

    version: str | None
    max_qos: int | None


EventKind = Literal["connected", "disconnected", "error"]


class ConnectionEventJson(TypedDict):
    """One connect, disconnect or connection error."""

    event: EventKind
    at: str | None
    detail: str | None


class ConnectionStatusJson(TypedDict):
    """The documented status object of a connector, plus ``recent_events`` (latest last)."""

    product_id: str
    connected: bool
    last_connected_at: str | None
    last_disconnected_at: str | None
    connection_error: str | None
    messages_received: int
    last_message_at: str | None
    subscribed_topics_count: int
    client_id: str
    hub: str | None
    broker_info: BrokerInfo | None
    updated_at: str | None
    recent_events: list[ConnectionEventJson]


class MqttConfigView(TypedDict):
    """``GET …/mqtt-config``: configuration, subscriptions and status, or nulls and ``message`` when unconfigured."""

    product_id: str
    mqtt_config: MqttConfigJson | None
    subscriptions: list[SubscriptionJson] | None
    status: ConnectionStatusJson | None
    message: NotRequired[str]


class MqttConfigSaved(TypedDict):
    """``PUT …/mqtt-config``: the saved configuration (secrets masked)."""

    status: str
    message: str
    requires_restart: bool
    mqtt_config: MqttConfigJson


class Done(TypedDict):
    """What a removal or a reconnect answers: ``success`` and what was done."""

    status: str
    message: str


class FailureJson(TypedDict):
    """A failed action: which subscription and action, the error, and the event's topic."""

    id: str
    subscription_id: str
    action_index: int
    action_type: str
    error: str
    topic: str
    created_at: str


class FailureList(TypedDict):
    """``GET …/mqtt-config/failures``, newest first."""

    failures: list[FailureJson]


class SubscriptionList(TypedDict):
    """``GET …/mqtt-config/subscriptions``."""

    subscriptions: list[SubscriptionJson]


class SubscriptionSaved(TypedDict):
    """A created or updated subscription."""

    status: str
    message: str
    subscription: SubscriptionJson


class TemplateJson(TypedDict):
    """An e-mail template."""

    name: str
    subject: str
    body: str
    recipients: list[str]
    created_at: str
    updated_at: str


class TemplateList(TypedDict):
    """``GET …/email-templates``."""

    templates: list[TemplateJson]


class TemplateSaved(TypedDict):
    """``PUT …/email-templates/{name}``."""

    status: str
    template: TemplateJson


class ProductList(TypedDict):
    """``GET /api/v1/products``."""

    products: list[ProductOut]


def stats_of(row: Any) -> SubscriptionStats:
    """The documented ``stats`` object of a subscription row."""
    return {
        "messages_received": row.messages_received,
        "last_message_at": row.last_message_at.isoformat() if row.last_message_at else None,
        "actions_executed": row.actions_executed,
        "actions_failed": row.actions_failed,
    }
