"""Which internal broker topics are device telemetry, and what they name.

Device topics live inside an organization's namespace: the broker mounts every
client of organization ``ab12cd34`` under ``org/ab12cd34/``, so a device that
publishes ``devices/{id}/datastream`` produces the internal topic
``org/ab12cd34/devices/{id}/datastream``. Anything else (global namespace, app
topics, unknown shapes) is not telemetry and is left to the broker alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mqtthub.tenancy import ORG_PREFIX, namespace_prefix


class Route(enum.StrEnum):
    """The kinds of device message the hub stores."""

    DATASTREAM = "datastream"
    """``devices/{id}/datastream``: one value of one of the device's telemetry definitions."""
    STATUS = "status"
    """``devices/{id}/status``: online/offline and metadata (battery, signal)."""
    TELEMETRY = "telemetry"
    """``device/{id}/telemetry/{sensor}``: a JSON object or a bare number for one sensor."""
    COMMAND_REPLY = "command_reply"
    """``devices/{id}/commands/reply``: a device reporting how a command ended."""


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A recognized device topic: its organization namespace, device and (for telemetry) sensor."""

    route: Route
    short_id: str
    device_id: str
    sensor: str | None = None


def command_topic(short_id: str, device_id: str) -> str:
    """The internal topic a device receives its commands on."""
    return f"{namespace_prefix(short_id)}devices/{device_id}/commands"


def command_device(topic: str) -> str | None:
    """The device whose command topic ``topic`` (internal) is, or None.

    >>> command_device("org/ab12cd34/devices/d1/commands")
    'd1'
    """
    levels = topic.split("/")
    if len(levels) != 5 or levels[0] != ORG_PREFIX or levels[2] != "devices" or levels[4] != "commands":
        return None
    return levels[3] or None


def broadcast_topic(short_id: str, organization_id: str) -> str:
    """The internal topic an organization's devices receive broadcasts on."""
    return f"{namespace_prefix(short_id)}organizations/{organization_id}/broadcast"


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """The device topic named by a full internal topic, or None when the topic is not telemetry.

    >>> parse_device_topic("org/ab12cd34/devices/d1/status")
    DeviceTopic(route=<Route.STATUS: 'status'>, short_id='ab12cd34', device_id='d1', sensor=None)
    """
    levels = topic.split("/")
    if len(levels) < 5 or levels[0] != ORG_PREFIX or not levels[1]:
        return None
    short_id, kind, device_id, rest = levels[1], levels[2], levels[3], levels[4:]
    if not device_id:
        return None
    if kind == "devices":
        if rest == ["datastream"]:
            return DeviceTopic(Route.DATASTREAM, short_id, device_id)
        if rest == ["status"]:
            return DeviceTopic(Route.STATUS, short_id, device_id)
        if rest == ["commands", "reply"]:
            return DeviceTopic(Route.COMMAND_REPLY, short_id, device_id)
        return None
    if kind == "device" and len(rest) >= 2 and rest[0] == "telemetry" and all(rest[1:]):
        return DeviceTopic(Route.TELEMETRY, short_id, device_id, "/".join(rest[1:]))
    return None
