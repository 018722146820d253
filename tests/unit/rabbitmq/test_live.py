"""The live relay's own decisions, without a broker: its own messages skipped, others' events delivered, what cannot
be sent counted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage

from mqtthub.rabbitmq.live import LiveRelay

EVENT = {"event": "datastream", "topic": "devices/d1/datastream", "data": {"value": 1}}


def incoming(body: bytes, *, app_id: str, routing_key: str = "org-a") -> AbstractIncomingMessage:
    """A delivered message as the relay reads it (app id, routing key, body): the one seam faked here."""
    return cast(AbstractIncomingMessage, SimpleNamespace(body=body, app_id=app_id, routing_key=routing_key))


async def test_other_hubs_events_are_delivered_and_this_hubs_own_skipped() -> None:
    delivered: list[tuple[str, Mapping[str, Any]]] = []
    relay = LiveRelay(lambda organization_id, event: delivered.append((organization_id, event)))
    body = json.dumps([EVENT, EVENT | {"topic": "devices/d2/datastream"}]).encode()
    await relay._take(incoming(body, app_id=relay.hub_id))
    assert delivered == []
    await relay._take(incoming(body, app_id="another-hub"))
    assert [topic["topic"] for _, topic in delivered] == ["devices/d1/datastream", "devices/d2/datastream"]
    assert {organization_id for organization_id, _ in delivered} == {"org-a"}
    assert relay.received == 2


async def test_a_message_that_is_not_a_list_of_events_is_ignored() -> None:
    delivered: list[Mapping[str, Any]] = []
    relay = LiveRelay(lambda organization_id, event: delivered.append(event))
    for body in (b"not json", b'{"event": "x"}', b'["not an event object"]'):
        await relay._take(incoming(body, app_id="another-hub"))
    assert delivered == []


def test_events_are_dropped_and_counted_while_the_relay_is_not_started() -> None:
    relay = LiveRelay(lambda organization_id, event: None)
    relay.send("org-a", EVENT)
    relay.send("org-b", EVENT)
    assert (relay.sent, relay.dropped) == (0, 2)
