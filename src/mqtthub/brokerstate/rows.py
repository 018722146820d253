"""Broker state records as SQLite row values, and back.

Properties are stored in their MQTT 5.0 wire encoding (the PUBLISH or will context), so every
property the broker carries survives without a column per property; the principal and the
subscriptions are JSON.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.broker.persistence import HeldRecord, SessionRecord, SubscriptionRecord
from mqtthub.mqtt.packets import PacketType, Properties, Will
from mqtthub.mqtt.properties import WILL, decode_properties, encode_properties

MessageRow = tuple[str, bytes, int, int, bytes, float, str | None]
"""topic, payload, qos, retain, properties, received_at, publisher client id."""

SessionRow = tuple[
    str, str, str, int, float | None, str, str, str | None, bytes | None, int, int, bytes | None, float | None
]
"""mountpoint, client id, principal, expiry, disconnected_at, subscriptions, inbound QoS 2 ids, will topic,
will payload, will QoS, will retain, will properties, will due."""

HeldRow = tuple[
    int, str, str, str, bytes, int, int, bytes, float, str | None, int, int, str, str | None, str | None, int, int
]
"""store id, session key (2), message (7), delivery qos, retain, identifiers, share group, share filter,
packet id, released."""


def _properties(props: Properties | None, context: int) -> bytes:
    return encode_properties(props, context)


def _read_properties(data: bytes, context: int) -> Properties | None:
    props, _ = decode_properties(data, 0, len(data), context)
    return props


def message_row(message: BrokerMessage) -> MessageRow:
    """A message's stored columns."""
    return (
        message.topic,
        message.payload,
        message.qos,
        int(message.retain),
        _properties(message.properties, PacketType.PUBLISH),
        message.received_at,
        message.publisher_client_id,
    )


def read_message(row: tuple[Any, ...]) -> BrokerMessage:
    """A message from its stored columns (see :data:`MessageRow`)."""
    topic, payload, qos, retain, props, received_at, publisher = row
    return BrokerMessage(
        topic,
        bytes(payload),
        int(qos),
        bool(retain),
        _read_properties(bytes(props), PacketType.PUBLISH),
        publisher,
        received_at=float(received_at),
    )


def _principal_json(principal: Principal) -> str:
    values = {f.name: getattr(principal, f.name) for f in dataclasses.fields(principal)}
    values["attributes"] = dict(principal.attributes)
    return json.dumps(values, separators=(",", ":"))


def _read_principal(text: str) -> Principal:
    values = json.loads(text)
    known = {f.name for f in dataclasses.fields(Principal)}
    return Principal(**{key: value for key, value in values.items() if key in known})


def session_row(record: SessionRecord) -> SessionRow:
    """A session's stored columns."""
    will = record.will
    subscriptions = [dataclasses.astuple(sub) for sub in record.subscriptions]
    return (
        record.mountpoint,
        record.client_id,
        _principal_json(record.principal),
        record.expiry_interval,
        record.disconnected_at,
        json.dumps(subscriptions, separators=(",", ":")),
        json.dumps(list(record.inbound_qos2)),
        None if will is None else will.topic,
        None if will is None else will.payload,
        0 if will is None else will.qos,
        0 if will is None else int(will.retain),
        None if will is None else _properties(will.properties, WILL),
        record.will_at,
    )


def read_session(row: tuple[Any, ...]) -> SessionRecord:
    """A session from its stored columns (see :data:`SessionRow`)."""
    (mountpoint, client_id, principal, expiry, disconnected_at, subs, inbound) = row[:7]
    will_topic, will_payload, will_qos, will_retain, will_props, will_at = row[7:]
    will = None
    if will_topic is not None:
        will = Will(
            will_topic, bytes(will_payload), int(will_qos), bool(will_retain), _read_properties(bytes(will_props), WILL)
        )
    return SessionRecord(
        mountpoint=mountpoint,
        client_id=client_id,
        principal=_read_principal(principal),
        expiry_interval=int(expiry),
        disconnected_at=disconnected_at,
        subscriptions=tuple(SubscriptionRecord(*values) for values in json.loads(subs)),
        inbound_qos2=tuple(json.loads(inbound)),
        will=will,
        will_at=will_at,
    )


def held_row(held: HeldRecord) -> HeldRow:
    """A held message's stored columns."""
    mountpoint, client_id = held.session_key
    return (
        held.store_id,
        mountpoint,
        client_id,
        *message_row(held.message),
        held.qos,
        int(held.retain),
        json.dumps(list(held.identifiers)),
        held.share_group,
        held.share_filter,
        held.packet_id,
        int(held.released),
    )


def read_held(row: tuple[Any, ...]) -> HeldRecord:
    """A held message from its stored columns (see :data:`HeldRow`)."""
    store_id, mountpoint, client_id = row[:3]
    qos, retain, identifiers, share_group, share_filter, packet_id, released = row[10:]
    return HeldRecord(
        store_id=int(store_id),
        session_key=(mountpoint, client_id),
        message=read_message(row[3:10]),
        qos=int(qos),
        retain=bool(retain),
        identifiers=tuple(json.loads(identifiers)),
        share_group=share_group,
        share_filter=share_filter,
        packet_id=int(packet_id),
        released=bool(released),
    )
