"""The outbound MQTT configuration form: its fields, and the API's request models built from it.

The form's fields are named after the API's (``broker.host``, ``topics.prefix``, …), so the models'
validation errors land next to the field they are about. Secrets are never written into the page: a stored
one is shown as stored, left blank it is kept (the API's rule for ``"***"``), and a *Remove* box removes it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile

from mqtthub.integrations.repository import masked_broker
from mqtthub.integrations.runtime import SECRET_FIELDS
from mqtthub.integrations.schemas import BrokerConfig, TopicsConfig, TopicsConfigOut
from mqtthub.models import MqttConfig


@dataclass(frozen=True, slots=True)
class Field:
    """One control of the form.

    Attributes:
        name: The API's field, dotted (``broker.port``): the control's name and where its errors are filed.
        label: What the control is called on the page.
        kind: ``text``, ``number``, ``check``, ``select``, ``pem`` (a text area), ``secret`` (a password input),
            ``secret-pem`` (a text area never filled in) or ``file``.
        choices: The options of a ``select``.
        hint: A line of help under the control.
    """

    name: str
    label: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    hint: str = ""

    @property
    def secret(self) -> bool:
        """Whether the field holds a secret (never rendered back)."""
        return self.kind in ("secret", "secret-pem", "file")

    @property
    def id(self) -> str:
        """The control's element id."""
        return "config-" + self.name.replace(".", "-").replace("_", "-")


BROKER = (
    Field("broker.host", "Host", hint="Host name or IP address of the external broker."),
    Field("broker.port", "Port", "number"),
    Field("broker.protocol", "MQTT version", "select", ("3.1.1", "5.0")),
    Field("broker.transport", "Transport", "select", ("tcp", "websockets")),
    Field("broker.ws_path", "WebSocket path", hint="Used with the websockets transport."),
    Field("broker.use_tls", "Use TLS", "check"),
    Field("broker.verify_cert", "Verify the broker's certificate and host name", "check"),
    Field("broker.username", "User name"),
    Field("broker.password", "Password", "secret"),
    Field("broker.client_id", "Client id", hint="Blank: generated, stable for this hub."),
    Field("broker.keep_alive", "Keep-alive (seconds)", "number"),
    Field("broker.clean_session", "Clean session (clean start in MQTT 5)", "check"),
    Field("broker.ca_cert", "Extra trusted CA certificates (PEM)", "pem"),
    Field("broker.client_cert", "Client certificate chain (PEM)", "pem"),
    Field("broker.client_key", "Client certificate's private key (PEM)", "secret-pem"),
    Field("broker.pkcs12", "Client certificate and key (PKCS#12 file)", "file"),
    Field("broker.pkcs12_password", "PKCS#12 password", "secret"),
    Field("broker.alpn", "ALPN protocols", hint="Comma-separated, e.g. x-amzn-mqtt-ca; blank for none."),
)
"""The ``broker`` object's controls, in the order the form shows them."""

TOPICS = (
    Field("topics.prefix", "Topic prefix"),
    Field("topics.pattern", "Topic pattern", hint="With {variables} that each subscription fills in."),
    Field("topics.use_shared", "Shared subscriptions ($share/group/topic)", "check"),
    Field("topics.shared_group", "Shared group"),
    Field("topics.qos", "QoS", "select", ("0", "1", "2")),
    Field("topics.event_field", "Event field", hint="Payload field (dotted path) holding the event name."),
)
"""The ``topics`` object's controls."""

FIELDS = BROKER + TOPICS
LABELS = {field.name: field.label for field in FIELDS}
_OPTIONAL = frozenset({"broker.username", "broker.client_id", "broker.ca_cert", "broker.client_cert"})
"""Text fields that are null when left blank (the others are refused blank, as the API refuses them)."""


def stored_values(config: MqttConfig | None) -> tuple[dict[str, str], frozenset[str]]:
    """The form's values for a stored configuration (the API's defaults when there is none), and which
    secrets are stored (their values are never part of the form)."""
    if config is None:
        broker = {name: info.default for name, info in BrokerConfig.model_fields.items()} | {"host": ""}
        topics = TopicsConfig().model_dump()
        stored: frozenset[str] = frozenset()
    else:
        broker = masked_broker(config.broker).model_dump()
        topics = TopicsConfigOut.model_validate(config.topics).model_dump()
        stored = frozenset(name for name in SECRET_FIELDS if broker.get(name))
    values = {f"broker.{name}": _shown(value) for name, value in broker.items() if name not in SECRET_FIELDS}
    values |= {f"topics.{name}": _shown(value) for name, value in topics.items()}
    values["broker.alpn"] = ", ".join(broker.get("alpn") or ())
    return values, stored


def _shown(value: Any) -> str:
    """A stored value as the form shows it (a ticked box is any non-empty value)."""
    if isinstance(value, bool):
        return "true" if value else ""
    return "" if value is None else str(value)


def typed_values(form: FormData) -> dict[str, str]:
    """What was typed into the form, secrets left out (to show the form again with its errors)."""
    secrets = {field.name for field in FIELDS if field.secret}
    return {name: value for name, value in form.items() if isinstance(value, str) and name not in secrets}


async def config_body(form: FormData) -> dict[str, Any]:
    """The ``{"broker", "topics"}`` body of ``PUT …/mqtt-config`` that the form says.

    A control missing from the form leaves the API's default; an unticked box is false.
    """
    body: dict[str, dict[str, Any]] = {"broker": {}, "topics": {}}
    for field in FIELDS:
        part, name = field.name.split(".", 1)
        value = form.get(field.name)
        if field.kind == "check":
            body[part][name] = value is not None
        elif field.secret:
            if form.get(f"{field.name}.remove"):
                body[part][name] = None
            elif isinstance(value, UploadFile):
                content = await value.read()
                if content:
                    body[part][name] = base64.b64encode(content).decode()
            elif value:
                body[part][name] = value
        elif field.name == "broker.alpn":
            protocols = [item.strip() for item in str(value or "").split(",") if item.strip()]
            body[part][name] = protocols or None
        elif isinstance(value, str):
            text = value.strip()
            body[part][name] = None if not text and field.name in _OPTIONAL else text
    return body
