"""Payload validation shared by MQTT and HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mqtthub.telemetry.parsing import (
    PayloadError,
    decode_json,
    parse_command_reply,
    parse_datastream,
    parse_sensor,
    parse_status,
    parse_timestamp,
)


def test_document_001_datastream_example() -> None:
    reading = parse_datastream(
        {
            "value": "25.6",
            "telemetryDataId": 1,
            "token": "device-token-123",
            "urgent": False,
            "thresholds": {"min": 20, "max": 30},
        }
    )
    assert reading.telemetry_data_id == 1
    assert reading.raw == "25.6"
    assert reading.value == 25.6
    assert (reading.threshold_min, reading.threshold_max) == (20.0, 30.0)
    assert reading.has_thresholds
    assert reading.urgent is False
    assert reading.timestamp_ms is None


def test_numeric_and_text_values() -> None:
    assert parse_datastream({"value": 3, "telemetryDataId": "7"}).value == 3.0
    text = parse_datastream({"value": "open", "telemetryDataId": 7})
    assert (text.value, text.raw) == (None, "open")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([1, 2], "payload"),
        ("x", "payload"),
        ({"telemetryDataId": 1}, "value"),
        ({"value": None, "telemetryDataId": 1}, "value"),
        ({"value": True, "telemetryDataId": 1}, "value"),
        ({"value": {"a": 1}, "telemetryDataId": 1}, "value"),
        ({"value": "x" * 2000, "telemetryDataId": 1}, "value"),
        ({"value": 1}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": "abc"}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": 0}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": True}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": 1.5}, "telemetryDataId"),
        ({"value": 1, "telemetryDataId": 1, "urgent": "yes"}, "urgent"),
        ({"value": 1, "telemetryDataId": 1, "thresholds": [1, 2]}, "thresholds"),
        ({"value": 1, "telemetryDataId": 1, "thresholds": {"min": "low"}}, "thresholds.min"),
        ({"value": 1, "telemetryDataId": 1, "thresholds": {"max": False}}, "thresholds.max"),
        ({"value": 1, "telemetryDataId": 1, "thresholds": {"min": 5, "max": 1}}, "thresholds"),
        ({"value": 1, "telemetryDataId": 1, "timestamp": "yesterday"}, "timestamp"),
        ({"value": 1, "telemetryDataId": 1, "timestamp": "2023-12-01T10:30:00"}, "timestamp"),
        ({"value": 1, "telemetryDataId": 1, "timestamp": -5}, "timestamp"),
    ],
)
def test_invalid_datastream_names_the_field(document: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_datastream(document)
    assert caught.value.field == field
    assert caught.value.reason


def test_timestamps() -> None:
    assert parse_timestamp("2023-12-01T10:30:00Z") == 1_701_426_600_000
    assert parse_timestamp("2023-12-01T12:30:00+02:00") == 1_701_426_600_000
    assert parse_timestamp(1_701_426_600) == 1_701_426_600_000
    assert parse_timestamp(1_701_426_600_123) == 1_701_426_600_123
    assert parse_timestamp(None) is None


def test_document_001_status_example() -> None:
    report = parse_status(
        {
            "status": "online",
            "timestamp": "2023-12-01T10:30:00Z",
            "token": "device-token-123",
            "metadata": {"battery": 85, "signal": -45},
        }
    )
    assert report.status == "online"
    assert report.timestamp_ms == 1_701_426_600_000
    assert (report.battery, report.signal) == (85.0, -45.0)
    assert report.metadata == {"battery": 85, "signal": -45}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "status"),
        ({"status": ""}, "status"),
        ({"status": 3}, "status"),
        ({"status": "x" * 40}, "status"),
        ({"status": "online", "metadata": "full"}, "metadata"),
        ({"status": "online", "metadata": {"battery": 150}}, "metadata.battery"),
        ({"status": "online", "metadata": {"signal": "strong"}}, "metadata.signal"),
    ],
)
def test_invalid_status_names_the_field(document: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_status(document)
    assert caught.value.field == field


def test_sensor_bare_number_and_object() -> None:
    bare = parse_sensor("temperature", 21.5)
    assert (bare.value, bare.raw) == (21.5, "21.5")
    obj = parse_sensor("env", {"value": "19.5", "unit": "C", "timestamp": 1_701_426_600})
    assert obj.value == 19.5
    assert json.loads(obj.raw) == {"value": "19.5", "unit": "C", "timestamp": 1_701_426_600}
    assert obj.timestamp_ms == 1_701_426_600_000
    assert parse_sensor("env", {"humidity": 40}).value is None
    with pytest.raises(PayloadError):
        parse_sensor("t", "hot")
    with pytest.raises(PayloadError):
        parse_sensor("t", True)


def test_command_reply() -> None:
    reply = parse_command_reply({"commandId": "c1", "status": "failed", "error": "busy"})
    assert (reply.command_id, reply.status, reply.error) == ("c1", "failed", "busy")
    for bad, field in (({"status": "completed"}, "commandId"), ({"commandId": "c", "status": "done"}, "status")):
        with pytest.raises(PayloadError) as caught:
            parse_command_reply(bad)
        assert caught.value.field == field


def test_decode_json_rejects_non_json() -> None:
    assert decode_json(b'{"a": 1}') == {"a": 1}
    for payload in (b"not json", b"\xff\xfe", b""):
        with pytest.raises(PayloadError) as caught:
            decode_json(payload)
        assert caught.value.field == "payload"
