"""Request and response bodies of the messaging API (field names as in reference document 004)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict

from mqtthub.messaging.namespace import check_topic_filter, check_topic_name

TopicName = Annotated[str, AfterValidator(check_topic_name)]
TopicFilter = Annotated[str, AfterValidator(check_topic_filter)]
PayloadEncoding = Literal["utf-8", "base64"]


class PublishRequest(BaseModel):
    """``POST /publish``. A payload that is not a string is sent as its JSON text."""

    model_config = ConfigDict(extra="forbid")

    topic: TopicName = Field(description="Topic name, without wildcards, inside the caller's namespace.")
    payload: str | int | float | bool | dict[str, Any] | list[Any] | None = Field(
        "", description="The message: a string, or any JSON value (sent as JSON text)."
    )
    qos: int = Field(0, ge=0, le=2, description="MQTT quality of service.")
    retain: bool = Field(False, description="Ask the broker to keep it as the topic's retained message.")
    payload_encoding: PayloadEncoding = Field("utf-8", description="`base64` when `payload` is base64 of binary data.")

    @model_validator(mode="after")
    def _decodable(self) -> PublishRequest:
        if self.payload_encoding == "base64":
            if not isinstance(self.payload, str):
                raise ValueError("a base64 payload must be a string")
            try:
                base64.b64decode(self.payload, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"payload is not valid base64: {exc}") from None
        return self

    def payload_bytes(self) -> bytes:
        """The bytes to publish."""
        if self.payload_encoding == "base64":
            assert isinstance(self.payload, str)
            return base64.b64decode(self.payload)
        if isinstance(self.payload, str):
            return self.payload.encode()
        return json.dumps(self.payload, separators=(",", ":")).encode()


class PublishResponse(BaseModel):
    """The answer to ``POST /publish``."""

    success: bool = True
    message: str
    topic: str
    qos: int
    retain: bool
    payload_size: int
    timestamp: datetime


class SubscribeRequest(BaseModel):
    """``POST /subscribe``: record the messages of a topic filter (``+`` and ``#`` allowed)."""

    model_config = ConfigDict(extra="forbid")

    topic: TopicFilter = Field(description="Topic filter inside the caller's namespace.")
    qos: int = Field(0, ge=0, le=2, description="MQTT quality of service of the subscription.")


class SubscriptionResponse(BaseModel):
    """The answer to ``POST /subscribe`` and ``DELETE /subscribe/{topic}``."""

    success: bool = True
    message: str
    topic: str
    qos: int | None = None


class MessageOut(BaseModel):
    """One message from the history or the live stream."""

    id: str | None = Field(None, description="History id (absent on live messages not recorded).")
    topic: str
    payload: str = Field(description="UTF-8 text, or base64 when `payload_encoding` is `base64`.")
    payload_encoding: PayloadEncoding
    qos: int
    retain: bool
    timestamp: datetime


class MessagesResponse(BaseModel):
    """A page of the history, newest first."""

    messages: list[MessageOut]
    count: int = Field(description="Messages in this page.")
    total: int = Field(description="Messages matching the query in the whole history.")
    limit: int
    offset: int


class TopicInfo(BaseModel):
    """A topic seen in the history."""

    topic: str
    message_count: int
    last_message_at: datetime


class TopicsResponse(BaseModel):
    """``GET /topics``: topics in the history and the filters being recorded."""

    topics: list[TopicInfo]
    count: int
    subscriptions: list[str]


class StatsResponse(BaseModel):
    """``GET /stats`` for the caller's organization."""

    total_messages: int
    unique_topics: int
    recent_messages: int = Field(description="Messages received in the last hour.")
    topic_counts: dict[str, int]
    active_subscriptions: int
    mqtt_connected: bool
    websocket_connections: int
    uptime: float


def encode_payload(payload: bytes) -> tuple[str, PayloadEncoding]:
    """Payload bytes as JSON-safe text: UTF-8 when it decodes, base64 otherwise."""
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


class MessagingHealth(TypedDict):
    """The messaging fields of ``GET /health`` (document 004's names; totals over every organization)."""

    mqtt_connected: bool
    message_count: int | None
    active_subscriptions: int
    websocket_connections: int
