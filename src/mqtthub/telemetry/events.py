"""The live events telemetry publishes, and the JSON of statuses and commands that events and the API share."""

from __future__ import annotations

from datetime import UTC, datetime

from mqtthub.models import DeviceCommand, DeviceStatus
from mqtthub.realtime import Event
from mqtthub.telemetry.schemas import AlertJson, CommandJson, DatastreamJson, SensorJson, StatusJson


def iso_ms(ms: int) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, from Unix milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(moment: datetime | None) -> str | None:
    """An ISO 8601 UTC timestamp, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def datastream_event(organization_id: str, data: DatastreamJson) -> Event:
    """A stored datastream value."""
    return Event(organization_id, "datastream", f"devices/{data['deviceId']}/datastream", data)


def telemetry_event(organization_id: str, data: SensorJson) -> Event:
    """A stored sensor telemetry message."""
    topic = f"device/{data['deviceId']}/telemetry/{data['sensor']}"
    return Event(organization_id, "telemetry", topic, data)


def alert_event(organization_id: str, data: AlertJson) -> Event:
    """A new alert."""
    return Event(organization_id, "alert", f"devices/{data['deviceId']}/alerts", data)


def status_json(device_id: str, row: DeviceStatus | None) -> StatusJson:
    """A device's status as the API and live events show it."""
    if row is None:
        return {
            "deviceId": device_id,
            "status": "unknown",
            "online": False,
            "lastSeen": None,
            "battery": None,
            "signal": None,
            "metadata": {},
            "statusAt": None,
            "connectedAt": None,
            "disconnectedAt": None,
        }
    return {
        "deviceId": device_id,
        "status": row.status,
        "online": row.online,
        "lastSeen": iso(row.last_seen),
        "battery": row.battery,
        "signal": row.signal,
        "metadata": row.status_metadata or {},
        "statusAt": iso(row.status_at),
        "connectedAt": iso(row.connected_at),
        "disconnectedAt": iso(row.disconnected_at),
    }


def status_event(organization_id: str, data: StatusJson) -> Event:
    """A device's status changed."""
    return Event(organization_id, "status", f"devices/{data['deviceId']}/status", data)


def command_json(command: DeviceCommand) -> CommandJson:
    """A command as the API and live events show it."""
    return {
        "id": command.id,
        "commandId": command.id,
        "deviceId": command.device_id,
        "organizationId": command.organization_id,
        "command": command.command,
        "parameters": command.parameters,
        "status": command.status,
        "result": command.result,
        "error": command.error,
        "createdAt": iso(command.created_at),
        "deliveredAt": iso(command.delivered_at),
        "completedAt": iso(command.completed_at),
    }


def command_event(organization_id: str, data: CommandJson) -> Event:
    """A command was created or changed status."""
    return Event(organization_id, "command", f"devices/{data['deviceId']}/commands", data)
