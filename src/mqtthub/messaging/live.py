"""The messages ``/ws`` clients receive, carried by the shared live fan-out.

The messaging service publishes each broker message of an organization once (see :mod:`.taps`) as a
:class:`LiveMessage` whose JSON text is built once for every client. Messages the organization records are
published *in the feed*: a ``/ws`` client without filters of its own follows them; a client with its own
filters receives whatever matches those, recorded or not. Bounded queues, overflow policies and the count of
what slow clients lost are the fan-out's (:mod:`mqtthub.realtime.fanout`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mqtthub.broker.hooks import BrokerMessage
from mqtthub.messaging.schemas import encode_payload
from mqtthub.realtime.fanout import FanOut


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One message of an organization's topic (as the organization names it) and the frame that carries it."""

    organization_id: str
    topic: str
    text: str


def live_message_text(topic: str, message: BrokerMessage, *, history_id: str | None = None) -> str:
    """The JSON text a WebSocket client receives for a message (``id`` is its history id if it was recorded)."""
    payload, encoding = encode_payload(message.payload)
    timestamp = datetime.fromtimestamp(message.received_at or time.time(), UTC)
    body: dict[str, Any] = {
        "type": "message",
        "id": history_id,
        "topic": topic,
        "payload": payload,
        "payload_encoding": encoding,
        "qos": message.qos,
        "retain": message.retain,
        "timestamp": timestamp.isoformat(),
    }
    return json.dumps(body, separators=(",", ":"))


class LiveMessages(FanOut[LiveMessage]):
    """The fan-out of messages to ``/ws`` clients, named ``ws`` (its metrics' ``endpoint`` label)."""

    def __init__(self, *, queue_size: int) -> None:
        super().__init__("ws", queue_size=queue_size)
