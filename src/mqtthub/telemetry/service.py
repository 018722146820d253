"""The telemetry service: the ingest writer, the broker's message sink and connection observer, and pruning.

Built by the hub before the broker, whose sink and observer it is, and stopped after it, so no
accepted message finds its writer closed::

    telemetry = TelemetryService(database, settings)
    broker = Broker(config, ..., sink=telemetry.sink, observer=telemetry.observer)
    async with telemetry, broker, CommandService(telemetry, broker):
        ...

It needs no broker: what publishes (commands, broadcasts) is the
:class:`~mqtthub.telemetry.commands.CommandService`, built after the broker. ``async with`` runs the
ingest writer and, when retention is on, the pruning loop (in its
:class:`~mqtthub.background.BackgroundTasks`); leaving it writes what is still queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy import delete, select, update

from mqtthub.auth.live import DeviceChanged
from mqtthub.background import BackgroundTasks, ServiceState
from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.db.faults import RETRY_AFTER
from mqtthub.errors import PermissionDeniedError, StateError, UnavailableError, ValidationFailedError
from mqtthub.models import DeviceStatus, RejectedMessage, TelemetryAlert, TelemetryValue
from mqtthub.realtime import RealtimeBus
from mqtthub.telemetry.directory import DefinitionChanged, Directory
from mqtthub.telemetry.ingest import Ingest, IngestKind, Source, from_message
from mqtthub.telemetry.pending import CommandSubscriptions, track_restored
from mqtthub.telemetry.routing import Route
from mqtthub.telemetry.schemas import IngestHealth, StoredJson, TelemetryStats
from mqtthub.telemetry.sink import DeviceObserver, TelemetrySink
from mqtthub.telemetry.store import TelemetryStore
from mqtthub.telemetry.writer import IngestWriter

logger = logging.getLogger(__name__)

PRUNE_CHUNK = 5000
DAY_MS = 86_400_000


def http_topic(route: Route, device_id: str, sensor: str | None) -> str:
    """The MQTT topic an HTTP device message stands for (shown in the rejected-message log)."""
    if route is Route.TELEMETRY:
        return f"device/{device_id}/telemetry/{sensor}"
    if route is Route.COMMAND_REPLY:
        return f"devices/{device_id}/commands/reply"
    return f"devices/{device_id}/{route.value}"


class TelemetryService:
    """Everything telemetry does at run time; see the module docstring.

    Args:
        database: Where readings are written.
        settings: ``telemetry_*`` settings.
        realtime: Where live events go after each commit.
        prune_interval: Seconds between retention passes.
        record_delay: Seconds a batch holding only the hub's own records (connects, disconnects, command
            deliveries) may wait to fill: a reconnecting fleet's presence is written in a few large batches.
        clock: Unix time source.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        realtime: RealtimeBus | None = None,
        *,
        prune_interval: float = 300.0,
        record_delay: float = 0.025,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.settings = settings
        self.realtime = realtime if realtime is not None else RealtimeBus(queue_size=settings.realtime_queue_size)
        self.prune_interval = prune_interval
        self.clock = clock
        self.directory = Directory()
        self.store = TelemetryStore(self.directory, wants_events=self.realtime.has_listeners)
        self.writer: IngestWriter[Ingest] = IngestWriter(
            database,
            self.store,
            capacity=settings.telemetry_queue_size,
            max_batch=settings.telemetry_batch_size,
            max_delay=settings.telemetry_batch_delay_ms / 1000,
            hold_timeout=settings.telemetry_hold_timeout,
            unawaited_delay=record_delay,
            on_committed=self._committed,
        )
        self.sink = TelemetrySink(self.writer)
        self.tasks = BackgroundTasks("telemetry")
        """The service's background loops (their crashes are counted in ``/metrics``)."""
        self.command_subscriptions = CommandSubscriptions(clock)
        """Devices that subscribed to their command topic, for the command service to send their pending commands."""
        self.observer = DeviceObserver(
            self.writer,
            clock=clock,
            directory=self.directory,
            on_subscribed=self.command_subscriptions.subscribed,
            on_restored=partial(track_restored, delivered=self.command_delivered),
        )
        self.stored: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.state = ServiceState.CREATED

    # --- life cycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self.state is not ServiceState.CREATED:
            raise StateError(f"the telemetry service can be started only once (it is {self.state.value})")
        await self._reset_presence()
        await self.writer.__aenter__()
        await self.tasks.__aenter__()
        if self.settings.telemetry_retention_days > 0:
            self.tasks.loop("retention", self._prune_loop)
        changes = self.database.changes
        changes.subscribe(DeviceChanged, lambda change: self.directory.forget_device(change.device_id))
        changes.subscribe(DefinitionChanged, lambda change: self.directory.forget_definition(change.definition_id))
        self.state = ServiceState.RUNNING
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.state = ServiceState.CLOSING
        await self.tasks.close()  # the retention pass
        await self.writer.close()
        self.state = ServiceState.CLOSED

    async def _reset_presence(self) -> None:
        """Mark devices offline that a previous run left online: a starting hub has no connections yet.

        (After ``kill -9`` the previous run could not record the disconnects.)
        """
        now = datetime.fromtimestamp(self.clock(), UTC)
        async with self.database.session() as session:
            await session.execute(
                update(DeviceStatus)
                .where(DeviceStatus.online.is_(True))
                .values(online=False, status="offline", disconnected_at=now)
            )

    def _committed(self, items: Sequence[Ingest], codes: Sequence[int]) -> None:
        for item, code in zip(items, codes, strict=True):
            if item.rejection is not None:
                self.rejected[item.rejection.field] += 1
            elif code < 0x80:
                self.stored[item.kind] += 1
            for event in item.events:
                self.realtime.publish(event)

    def stats(self) -> TelemetryStats:
        """Counters for ``/stats`` and the telemetry stats endpoint."""
        writer = self.writer
        return {
            "stored": dict(self.stored),
            "rejected": sum(self.rejected.values()),
            "rejectedByField": dict(self.rejected),
            "offered": self.sink.offered,
            "queued": writer.queued,
            "batches": writer.batches,
            "written": writer.written,
            "droppedQos0": writer.dropped,
            "failed": writer.failed,
            "publisherPauses": writer.parked_total,
            "refusedByDatabase": writer.refused,
            "releasedAfterHoldTimeout": writer.released,
            "databaseOutages": writer.outages,
            "liveSubscribers": self.realtime.count(),
        }

    def health(self) -> IngestHealth:
        """The ``ingest`` component of ``/health``: ``down`` with the reason while database writes fail.

        Recovery (the next commit) clears it. ``heldItems`` are messages kept in memory, not
        acknowledged, waiting for the database.
        """
        writer = self.writer
        outage = writer.outage
        report: IngestHealth = {"status": "up" if outage is None else "down", "heldItems": writer.held}
        if outage is not None:
            report["reason"] = outage.fault.reason
            report["code"] = outage.fault.code
            report["since"] = datetime.fromtimestamp(outage.started, UTC).isoformat(timespec="milliseconds")
            report["failedAttempts"] = outage.attempts
        return report

    # --- HTTP ingestion (same path as MQTT) ------------------------------------------------------

    async def ingest_http(
        self, route: Route, device_id: str, organization_id: str, payload: bytes, *, sensor: str | None = None
    ) -> StoredJson:
        """Store a device message that came over HTTP, exactly as if it came over MQTT.

        Returns what was stored (the same JSON as the live event).

        Raises:
            ValidationFailedError: the payload is invalid; ``field`` names what is wrong (HTTP 422).
            PermissionDeniedError: the device is disabled.
            UnavailableError: the database is down or telemetry is stopping; nothing was stored
                (HTTP 503 with ``Retry-After``). The answer comes only after the commit otherwise.
        """
        item = from_message(
            route,
            device_id,
            payload,
            source=Source.HTTP,
            received_ms=int(self.clock() * 1000),
            topic=http_topic(route, device_id, sensor),
            sensor=sensor,
            organization_id=organization_id,
        )
        outage = self.writer.outage
        if outage is not None:
            # Not queued behind a database that is down: the client is told to come back (503, Retry-After).
            raise UnavailableError(
                f"the database is unavailable ({outage.fault.reason}); the message was not stored",
                retry_after=RETRY_AFTER,
            )
        try:
            future = self.writer.submit(item)
            code = await asyncio.shield(future)
        except StateError:
            raise UnavailableError("telemetry ingestion is stopping", retry_after=RETRY_AFTER) from None
        except UnavailableError as exc:
            raise UnavailableError(exc.message, retry_after=RETRY_AFTER) from None
        except asyncio.CancelledError:
            if not future.cancelled():
                raise  # the request itself was cancelled
            raise UnavailableError("telemetry ingestion stopped before the message was stored") from None
        if code < 0x80 and item.stored is not None:
            return item.stored
        rejection = item.rejection
        if rejection is None:
            raise UnavailableError("the message could not be stored")
        if rejection.field == "device":
            raise PermissionDeniedError(rejection.reason)
        raise ValidationFailedError(f"{rejection.field} {rejection.reason}", field=rejection.field)

    # --- command deliveries ----------------------------------------------------------------------

    def command_delivered(self, command_id: str, device_id: str, client_id: str) -> None:
        """Record that a device acknowledged a command (the broker calls it, also for restored messages)."""
        item = Ingest(
            IngestKind.COMMAND_DELIVERED,
            device_id,
            Source.BROKER,
            int(self.clock() * 1000),
            command_id=command_id,
        )
        try:
            self.writer.submit(item, awaited=False)
        except StateError:
            logger.info("command %s delivered to %s while telemetry is stopped", command_id, client_id)

    # --- retention -------------------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:  # the database is down, most likely: the next pass catches up
                logger.exception("telemetry retention pass failed")
            await asyncio.sleep(self.prune_interval)

    async def prune(self) -> int:
        """Delete readings, alerts and rejected messages older than the retention; return how many."""
        days = self.settings.telemetry_retention_days
        if days <= 0:
            return 0
        cutoff_ms = int(self.clock() * 1000 - days * DAY_MS)
        cutoff = datetime.fromtimestamp(cutoff_ms / 1000, UTC)
        total = 0
        targets: list[tuple[Any, Any, Any]] = [
            (TelemetryValue, TelemetryValue.id, TelemetryValue.ts_ms < cutoff_ms),
            (TelemetryAlert, TelemetryAlert.id, TelemetryAlert.created_at < cutoff),
            (RejectedMessage, RejectedMessage.id, RejectedMessage.received_at < cutoff),
        ]
        for model, key, condition in targets:
            while True:
                # Small chunks keep each transaction short, so the ingest writer is never held up for long.
                async with self.database.session() as session:
                    chunk = select(key).where(condition).limit(PRUNE_CHUNK).scalar_subquery()
                    result = await session.execute(delete(model).where(key.in_(chunk)))
                deleted = int(getattr(result, "rowcount", 0) or 0)
                total += deleted
                if deleted < PRUNE_CHUNK:
                    break
                await asyncio.sleep(0)
        if total:
            logger.info("retention: pruned %d telemetry rows older than %s days", total, days)
        return total
