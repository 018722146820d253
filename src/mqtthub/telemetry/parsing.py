"""Validation of device message payloads, shared by MQTT and HTTP (one business-logic path).

Each ``parse_*`` function takes the decoded JSON document (``decode_json`` turns MQTT
bytes into one) and returns a typed reading, or raises :class:`PayloadError` naming the
field that is wrong. Only what can be checked without the database is checked here;
whether ``telemetryDataId`` names one of the device's definitions is checked by the
ingest store, in the same batch that writes the reading.

Formats (document 001)::

    datastream  {"value": "25.6" | 25.6, "telemetryDataId": 1, "urgent": false,
                 "thresholds": {"min": 20, "max": 30}, "timestamp": "2023-12-01T10:30:00Z", "token": "..."}
    status      {"status": "online", "timestamp": "...", "metadata": {"battery": 85, "signal": -45}}
    telemetry   21.5   or   {"value": 21.5, "unit": "C", "timestamp": ...}   (any JSON object)
    reply       {"commandId": "<id>", "status": "completed" | "failed", "result": {...}, "error": "..."}

``timestamp`` is an ISO 8601 string (a zone is required) or a Unix time number (seconds,
or milliseconds when larger than 10^11). ``token`` is accepted and ignored: the device is
already authenticated by its connection or its HTTP bearer token.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_TEXT_VALUE = 1024
MAX_STATUS = 32
COMMAND_OUTCOMES = frozenset({"completed", "failed"})
_MS_THRESHOLD = 100_000_000_000
_MISSING: Any = object()


class PayloadError(ValueError):
    """A payload that cannot be stored; ``field`` names the offending field (``payload`` for the whole)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(slots=True)
class DatastreamReading:
    """A validated datastream message."""

    telemetry_data_id: int
    raw: str
    value: float | None
    urgent: bool = False
    threshold_min: float | None = None
    threshold_max: float | None = None
    has_thresholds: bool = False
    timestamp_ms: int | None = None


@dataclass(slots=True)
class StatusReport:
    """A validated status message."""

    status: str
    timestamp_ms: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    battery: float | None = None
    signal: float | None = None


@dataclass(slots=True)
class SensorReading:
    """A validated ``device/{id}/telemetry/{sensor}`` message."""

    sensor: str
    raw: str
    value: float | None
    timestamp_ms: int | None = None


@dataclass(slots=True)
class CommandReply:
    """A validated command reply."""

    command_id: str
    status: str
    result: Any = None
    error: str | None = None


def _stdlib_loads(payload: bytes) -> Any:
    return json.loads(payload.decode())


_loads: Callable[[bytes], Any]
try:  # orjson (the ``speed`` extra) parses small documents several times faster
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the installed extras
    _loads = _stdlib_loads


def decode_json(payload: bytes) -> Any:
    """The JSON document in an MQTT payload.

    Raises:
        PayloadError: the payload is not UTF-8 JSON.
    """
    try:
        return _loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("payload", "not valid UTF-8 JSON") from None


def _number(value: Any) -> float | None:
    """A finite float from a JSON number, or None for anything else (booleans are not numbers)."""
    # Exact type checks: JSON decoders produce plain int and float, and bool (an int subclass) is excluded for free.
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _number_text(value: int | float) -> str:
    """A JSON number as JSON text (what ``json.dumps`` gives, without its overhead)."""
    return repr(value) if isinstance(value, float) else str(value)


def _numeric_text(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _object(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise PayloadError("payload", "must be a JSON object")
    return document


def parse_timestamp(value: Any, name: str = "timestamp") -> int | None:
    """Milliseconds since the Unix epoch from an ISO 8601 string or a Unix time number; None when absent."""
    if value is None:
        return None
    number = _number(value)
    if number is not None:
        if number < 0:
            raise PayloadError(name, "must not be negative")
        return int(number if number >= _MS_THRESHOLD else number * 1000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise PayloadError(name, "must be an ISO 8601 date-time or a Unix time") from None
        if moment.tzinfo is None:
            raise PayloadError(name, "must include a time zone (for example a trailing Z)")
        return int(moment.timestamp() * 1000)
    raise PayloadError(name, "must be an ISO 8601 date-time or a Unix time")


def _optional_number(container: dict[str, Any], key: str, name: str) -> float | None:
    value = container.get(key)
    if value is None:
        return None
    number = _number(value)
    if number is None:
        raise PayloadError(name, "must be a number")
    return number


def parse_datastream(document: Any) -> DatastreamReading:
    """Validate a datastream message; see the module docstring for the format."""
    body = _object(document)
    value = body.get("value", _MISSING)
    if value is _MISSING:
        raise PayloadError("value", "is required")
    number = _number(value)
    if number is not None:
        raw = repr(value) if type(value) is float else str(value)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT_VALUE:
            raise PayloadError("value", f"must be at most {MAX_TEXT_VALUE} characters")
        raw, number = value, _numeric_text(value)
    else:
        raise PayloadError("value", "must be a number or a string")
    data_id = body.get("telemetryDataId", _MISSING)
    if data_id is _MISSING:
        raise PayloadError("telemetryDataId", "is required")
    if type(data_id) is not int:
        if not (isinstance(data_id, str) and data_id.isdigit()):
            raise PayloadError("telemetryDataId", "must be a positive integer")
        data_id = int(data_id)
    if data_id <= 0:
        raise PayloadError("telemetryDataId", "must be a positive integer")
    urgent = body.get("urgent")
    if urgent is None:
        urgent = False
    elif type(urgent) is not bool:
        raise PayloadError("urgent", "must be a boolean")
    timestamp = body.get("timestamp")
    reading = DatastreamReading(
        data_id, raw, number, urgent, timestamp_ms=None if timestamp is None else parse_timestamp(timestamp)
    )
    thresholds = body.get("thresholds")
    if thresholds is not None:
        if not isinstance(thresholds, dict):
            raise PayloadError("thresholds", "must be an object with min and/or max")
        reading.threshold_min = _optional_number(thresholds, "min", "thresholds.min")
        reading.threshold_max = _optional_number(thresholds, "max", "thresholds.max")
        low, high = reading.threshold_min, reading.threshold_max
        if low is not None and high is not None and low > high:
            raise PayloadError("thresholds", "min must not be greater than max")
        reading.has_thresholds = True
    return reading


def parse_status(document: Any) -> StatusReport:
    """Validate a status message; see the module docstring for the format."""
    body = _object(document)
    status = body.get("status")
    if status is None:
        raise PayloadError("status", "is required")
    if not isinstance(status, str) or not status.strip():
        raise PayloadError("status", "must be a non-empty string")
    if len(status) > MAX_STATUS:
        raise PayloadError("status", f"must be at most {MAX_STATUS} characters")
    report = StatusReport(status.strip().lower(), parse_timestamp(body.get("timestamp")))
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise PayloadError("metadata", "must be an object")
        report.metadata = metadata
        report.battery = _optional_number(metadata, "battery", "metadata.battery")
        if report.battery is not None and not 0 <= report.battery <= 100:
            raise PayloadError("metadata.battery", "must be between 0 and 100")
        report.signal = _optional_number(metadata, "signal", "metadata.signal")
    return report


def parse_sensor(sensor: str, document: Any) -> SensorReading:
    """Validate a ``device/{id}/telemetry/{sensor}`` message: a JSON object or a bare number."""
    number = _number(document)
    if number is not None:
        return SensorReading(sensor, _number_text(document), number)
    if not isinstance(document, dict):
        raise PayloadError("payload", "must be a JSON object or a number")
    value = document.get("value")
    number = _number(value) if value is not None else None
    if number is None and isinstance(value, str):
        number = _numeric_text(value)
    raw = json.dumps(document, separators=(",", ":"))
    if len(raw) > MAX_TEXT_VALUE * 8:
        raise PayloadError("payload", f"must be at most {MAX_TEXT_VALUE * 8} bytes of JSON")
    return SensorReading(sensor, raw, number, parse_timestamp(document.get("timestamp")))


def parse_command_reply(document: Any) -> CommandReply:
    """Validate a command reply; see the module docstring for the format."""
    body = _object(document)
    command_id = body.get("commandId")
    if not isinstance(command_id, str) or not command_id:
        raise PayloadError("commandId", "is required and must be a string")
    status = body.get("status")
    if status not in COMMAND_OUTCOMES:
        raise PayloadError("status", "must be 'completed' or 'failed'")
    error = body.get("error")
    if error is not None and not isinstance(error, str):
        raise PayloadError("error", "must be a string")
    return CommandReply(command_id, status, body.get("result"), error)
