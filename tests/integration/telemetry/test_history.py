"""History queries (pages, time range, buckets) and retention pruning, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mqtthub.errors import PermissionDeniedError, ValidationFailedError
from mqtthub.telemetry.history import HistoryQuery, aggregates, parse_bucket, readings, sensors
from mqtthub.telemetry.routing import Route
from tests.integration.telemetry.conftest import Stack

BASE_MS = 1_699_999_980_000  # 2023-11-14T22:13:00Z, a whole minute


async def _post(stack: Stack, values: list[tuple[int, float]]) -> None:
    for offset_s, value in values:
        body = {"value": value, "telemetryDataId": stack.a.definition_id, "timestamp": BASE_MS + offset_s * 1000}
        await stack.telemetry.ingest_http(
            Route.DATASTREAM, stack.a.device_id, stack.a.organization_id, json.dumps(body).encode()
        )


async def test_pages_are_newest_first_within_the_range(stack: Stack) -> None:
    await _post(stack, [(n, float(n)) for n in range(10)])
    async with stack.database.session() as session:
        page, more = await readings(session, HistoryQuery(stack.a.device_id, limit=4))
        assert [row["value"] for row in page] == [9.0, 8.0, 7.0, 6.0]
        assert more
        page, more = await readings(session, HistoryQuery(stack.a.device_id, limit=4, offset=8))
        assert [row["value"] for row in page] == [1.0, 0.0]
        assert not more
        ranged, _ = await readings(
            session, HistoryQuery(stack.a.device_id, start_ms=BASE_MS + 3000, end_ms=BASE_MS + 5000)
        )
        assert [row["value"] for row in ranged] == [5.0, 4.0, 3.0]
        assert ranged[0]["timestamp"] == "2023-11-14T22:13:05.000Z"
        assert ranged[0]["source"] == "http"
        assert (await readings(session, HistoryQuery(stack.a.device_id, sensor="humidity")))[0] == []
        other, _ = await readings(session, HistoryQuery(stack.b.device_id))
        assert other == []


async def test_buckets_aggregate_min_max_avg_count(stack: Stack) -> None:
    # Two one-minute buckets: [0, 60) s holds 10, 20, 30; [60, 120) s holds 40 and the text "n/a".
    await _post(stack, [(0, 10), (30, 20), (59, 30), (60, 40)])
    body = {"value": "n/a", "telemetryDataId": stack.a.definition_id, "timestamp": BASE_MS + 90_000}
    await stack.telemetry.ingest_http(
        Route.DATASTREAM, stack.a.device_id, stack.a.organization_id, json.dumps(body).encode()
    )
    async with stack.database.session() as session:
        rows, more = await aggregates(session, HistoryQuery(stack.a.device_id), parse_bucket("1m"))
    assert not more
    assert [(r["bucket"], r["min"], r["max"], r["avg"], r["count"], r["readings"]) for r in rows] == [
        ("2023-11-14T22:14:00.000Z", 40.0, 40.0, 40.0, 1, 2),
        ("2023-11-14T22:13:00.000Z", 10.0, 30.0, 20.0, 3, 3),
    ]
    assert all(r["sensor"] == "temperature" for r in rows)


async def test_sensors_are_listed_once_each_in_order(stack: Stack) -> None:
    await _post(stack, [(n, float(n)) for n in range(5)])
    for name in ("pressure", "humidity", "pressure", "a.b-c"):
        await stack.telemetry.ingest_http(
            Route.TELEMETRY, stack.a.device_id, stack.a.organization_id, b"1.5", sensor=name
        )
    async with stack.database.session() as session:
        assert await sensors(session, stack.a.device_id, 10) == ["a.b-c", "humidity", "pressure", "temperature"]
        assert await sensors(session, stack.a.device_id, 2) == ["a.b-c", "humidity"]
        assert await sensors(session, stack.b.device_id, 10) == []


def test_bucket_syntax() -> None:
    assert parse_bucket("30s") == 30_000
    assert parse_bucket("5m") == 300_000
    assert parse_bucket("1h") == 3_600_000
    assert parse_bucket("2d") == 172_800_000
    assert parse_bucket("90") == 90_000
    for bad in ("", "0s", "1w", "-5m", "1.5h", "400d"):
        with pytest.raises(ValidationFailedError):
            parse_bucket(bad)


async def test_http_ingestion_errors(stack: Stack) -> None:
    telemetry = stack.telemetry
    with pytest.raises(ValidationFailedError) as caught:
        await telemetry.ingest_http(Route.DATASTREAM, stack.a.device_id, stack.a.organization_id, b'{"value": 1}')
    assert caught.value.field == "telemetryDataId"
    # A device id of another organization is refused, as over MQTT.
    with pytest.raises(PermissionDeniedError):
        await telemetry.ingest_http(Route.STATUS, stack.b.device_id, stack.a.organization_id, b'{"status": "on"}')


async def test_retention_prunes_old_rows(stack: Stack) -> None:
    await _post(stack, [(0, 1.0), (10, 2.0)])
    telemetry = stack.telemetry
    taken = datetime(2023, 11, 14, 22, 13, tzinfo=UTC).timestamp()
    telemetry.settings = telemetry.settings.model_copy(update={"telemetry_retention_days": 30})
    telemetry.clock = lambda: taken + 20 * 86400
    assert await telemetry.prune() == 0
    telemetry.clock = lambda: taken + 40 * 86400  # age counts from the reading's own timestamp
    assert await telemetry.prune() == 2
    async with stack.database.session() as session:
        assert (await readings(session, HistoryQuery(stack.a.device_id)))[0] == []
