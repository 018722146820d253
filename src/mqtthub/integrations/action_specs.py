"""What an action of an event subscription may say, validated when it is saved.

Known types are ``conditional_email``, ``email``, ``webhook``, ``republish``, ``store`` and
``http``. Any other type (document 002's ``activate_policy``) is a *domain action*: its
templated ``params`` are POSTed to ``<MQTTHUB_INTEGRATION_DOMAIN_ACTIONS_URL>/<type>``.
Conditions are parsed and templates compiled here, so a bad one is refused with 422 in
FastAPI's ``{"detail": [{"loc", "msg", "type"}]}`` shape.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, field_validator

from mqtthub.errors import ValidationFailedError
from mqtthub.integrations.conditions import Condition
from mqtthub.integrations.templates import validate_json_template, validate_template

KNOWN_TYPES = frozenset({"conditional_email", "email", "webhook", "republish", "store", "http"})
_DOMAIN_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _check_template(value: str, where: str) -> str:
    try:
        validate_template(value, where=where)
    except ValidationFailedError as exc:
        raise ValueError(exc.message) from None
    return value


def _check_json_template(value: Any, where: str) -> Any:
    try:
        validate_json_template(value, where=where)
    except ValidationFailedError as exc:
        raise ValueError(exc.message) from None
    return value


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: str | None = Field(None, description="Run only when this holds, e.g. `payment.status == 'pending'`.")

    @field_validator("condition")
    @classmethod
    def _valid_condition(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Condition(value)
            except ValidationFailedError as exc:
                raise ValueError(exc.message) from None
        return value


class EmailAction(_Action):
    """Send an e-mail template (``conditional_email`` says the same; its condition is the point)."""

    type: Literal["email", "conditional_email"]
    template: str = Field(min_length=1, max_length=200, description="Name of one of the product's e-mail templates.")
    to: list[str] | None = Field(None, description="Recipients (templates allowed); the template's when unset.")

    @field_validator("to")
    @classmethod
    def _valid_to(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            _check_template(item, "to")
        return value


class _Http(_Action):
    url: str = Field(min_length=1, max_length=2000, description="Target URL (templates allowed).")
    method: HttpMethod = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (templates allowed).")
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds per attempt.")
    retries: int = Field(2, ge=0, le=10, description="Extra attempts after a network error, 429 or 5xx.")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return _check_template(value, "url")

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_json_template(value, "headers")  # type: ignore[no-any-return]


class WebhookAction(_Http):
    """Call a URL with a templated JSON body (the event itself when ``body`` is unset)."""

    type: Literal["webhook"]
    body: Any = Field(None, description="JSON body; every string in it is a template.")

    @field_validator("body")
    @classmethod
    def _valid_body(cls, value: Any) -> Any:
        return _check_json_template(value, "body")


class HttpAction(_Http):
    """A domain call: ``params`` (templated) as the JSON body, or as the query string for GET/DELETE."""

    type: Literal["http"]
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_json_template(value, "params")  # type: ignore[no-any-return]


class RepublishAction(_Action):
    """Publish to the embedded broker (in the product organization's namespace) or back to the remote broker."""

    type: Literal["republish"]
    target: Literal["local", "remote"] = "local"
    topic: str = Field(min_length=1, max_length=1000, description="Topic (template); no wildcards.")
    payload: Any = Field(None, description="Text or JSON template; the original payload when unset.")
    qos: int = Field(0, ge=0, le=2)
    retain: bool = False

    @field_validator("topic")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        if "+" in value or "#" in value:
            raise ValueError("a topic to publish to cannot hold wildcards")
        return _check_template(value, "topic")

    @field_validator("payload")
    @classmethod
    def _valid_payload(cls, value: Any) -> Any:
        return _check_json_template(value, "payload")


class StoreAction(_Action):
    """Keep the message in the subscription's event log."""

    type: Literal["store"]


class DomainAction(_Action):
    """Any other type: ``params`` POSTed as JSON to the configured domain-actions URL plus ``/<type>``."""

    type: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str) -> str:
        if not _DOMAIN_TYPE.match(value):
            raise ValueError("an action type is lowercase letters, digits and underscores")
        return value

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_json_template(value, "params")  # type: ignore[no-any-return]


def _discriminate(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):  # not a name: the domain action's own validation rejects it
        return "domain"
    if kind in ("email", "conditional_email"):
        return "email"
    if kind in KNOWN_TYPES:
        return str(kind)
    return "domain"


ActionSpec = Annotated[
    Annotated[EmailAction, Tag("email")]
    | Annotated[WebhookAction, Tag("webhook")]
    | Annotated[RepublishAction, Tag("republish")]
    | Annotated[StoreAction, Tag("store")]
    | Annotated[HttpAction, Tag("http")]
    | Annotated[DomainAction, Tag("domain")],
    Discriminator(_discriminate),
]
"""One action; the ``type`` field decides which model validates it."""

_ACTIONS: TypeAdapter[list[ActionSpec]] = TypeAdapter(list[ActionSpec])


def parse_actions(stored: list[dict[str, Any]]) -> list[ActionSpec]:
    """Actions as stored (already validated when saved) back into their models."""
    return _ACTIONS.validate_python(stored)


def dump_actions(actions: list[ActionSpec]) -> list[dict[str, Any]]:
    """Actions as given by the user (fields they set, plus ``type``), for storage and responses."""
    return [{"type": action.type, **action.model_dump(mode="json", exclude_unset=True)} for action in actions]
