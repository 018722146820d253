"""The command service: commands to devices and broadcasts to organizations, published through the broker.

Built by the hub after the broker, from the telemetry service (the ingestion side, built before
the broker as its sink and observer) and the broker itself::

    telemetry = TelemetryService(database, settings)
    broker = Broker(config, ..., sink=telemetry.sink, observer=telemetry.observer)
    commands = CommandService(telemetry, broker)

It stops before the broker, which stops before telemetry: an acknowledgement of a command still
finds the ingest writer that records it. Its one loop (in its
:class:`~mqtthub.background.BackgroundTasks`) sends devices that just subscribed to their command
topic the commands still pending for them (:mod:`mqtthub.telemetry.pending`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.background import BackgroundTasks, ServiceState
from mqtthub.broker.handle import BrokerHandle
from mqtthub.db.base import new_id
from mqtthub.errors import StateError, UnavailableError
from mqtthub.models import DeviceCommand, Organization
from mqtthub.models.telemetry import CommandStatus
from mqtthub.telemetry.events import command_event, command_json
from mqtthub.telemetry.pending import CommandSubscription
from mqtthub.telemetry.routing import broadcast_topic, command_topic
from mqtthub.telemetry.schemas import BroadcastJson, CommandJson
from mqtthub.telemetry.service import TelemetryService

logger = logging.getLogger(__name__)


async def device_commands(
    session: AsyncSession, device_id: str, *, status: str | None = None, limit: int, offset: int = 0
) -> list[DeviceCommand]:
    """The device's commands, newest first, optionally only those in ``status`` (the API's list and the console)."""
    statement = select(DeviceCommand).where(DeviceCommand.device_id == device_id)
    if status is not None:
        statement = statement.where(DeviceCommand.status == status)
    return list(await session.scalars(statement.order_by(DeviceCommand.created_at.desc()).limit(limit).offset(offset)))


class CommandService:
    """Commands and broadcasts; an async context manager.

    Args:
        telemetry: Where commands are stored and their deliveries recorded, live events go, and devices
            that subscribed to their commands are noted.
        broker: Publishes commands and broadcasts.
    """

    def __init__(self, telemetry: TelemetryService, broker: BrokerHandle) -> None:
        self.telemetry = telemetry
        self.database = telemetry.database
        self._broker = broker
        self.state = ServiceState.CREATED
        self.tasks = BackgroundTasks("commands")
        """The service's background loops (their crashes are counted in ``/metrics``)."""

    async def __aenter__(self) -> Self:
        if self.state is not ServiceState.CREATED:
            raise StateError(f"the command service can be started only once (it is {self.state.value})")
        await self.tasks.__aenter__()
        self.tasks.loop("pending-commands", self._pending_loop)
        self.state = ServiceState.RUNNING
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.state = ServiceState.CLOSING
        await self.tasks.close()  # pending commands being sent stay pending
        self.state = ServiceState.CLOSED

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.telemetry.clock(), UTC)

    async def _short_id(self, organization_id: str) -> str:
        async with self.database.session() as session:
            short_id = await session.scalar(select(Organization.short_id).where(Organization.id == organization_id))
        if short_id is None:
            raise UnavailableError("the device's organization no longer exists")
        return short_id

    async def _publish(self, topic: str, message: dict[str, Any], **options: Any) -> None:
        try:
            await self._broker.publish(topic, json.dumps(message).encode(), **options)
        except StateError as exc:
            raise UnavailableError(f"the MQTT broker is not available: {exc.message}") from None

    async def send_command(
        self,
        *,
        device_id: str,
        organization_id: str,
        command: str,
        parameters: dict[str, Any],
        created_by: str | None,
    ) -> CommandJson:
        """Record a command, then publish it QoS 1 to ``devices/{id}/commands``.

        The row is committed before the PUBLISH so that the device's acknowledgement (which
        moves it to ``delivered``) always finds it. A device with a persistent session that
        is offline gets it when it reconnects; any device gets it again when it subscribes to
        its command topic while it is still pending (:mod:`mqtthub.telemetry.pending`).

        Raises:
            UnavailableError: the broker is not running, or the organization is gone.
        """
        short_id = await self._short_id(organization_id)
        row = DeviceCommand(
            id=new_id(),
            organization_id=organization_id,
            device_id=device_id,
            command=command,
            parameters=parameters,
            status="pending",
            created_by=created_by,
            created_at=self._now(),
        )
        async with self.database.session() as session:
            session.add(row)
        data = command_json(row)
        await self._publish_command(row, command_topic(short_id, device_id))
        self.telemetry.realtime.publish(command_event(organization_id, data))
        return data

    async def _publish_command(self, row: DeviceCommand, topic: str) -> None:
        message = {
            "commandId": row.id,
            "command": row.command,
            "parameters": row.parameters,
            "timestamp": command_json(row)["createdAt"],
        }
        delivered = partial(self.telemetry.command_delivered, row.id, row.device_id)
        await self._publish(topic, message, qos=1, on_delivered=delivered)

    async def broadcast(self, organization_id: str, message: Any, *, qos: int = 1) -> BroadcastJson:
        """Publish ``message`` to ``organizations/{org}/broadcast`` in the organization's namespace.

        Raises:
            UnavailableError: the broker is not running, or the organization is gone.
        """
        short_id = await self._short_id(organization_id)
        broadcast_id = new_id()
        sent_at = self._now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = {
            "broadcastId": broadcast_id,
            "organizationId": organization_id,
            "message": message,
            "timestamp": sent_at,
        }
        await self._publish(broadcast_topic(short_id, organization_id), body, qos=qos)
        return {
            "broadcastId": broadcast_id,
            "topic": f"organizations/{organization_id}/broadcast",
            "timestamp": sent_at,
        }

    # --- pending commands ------------------------------------------------------------------------

    async def _pending_loop(self) -> None:
        subscriptions = self.telemetry.command_subscriptions
        while True:
            for subscription in await subscriptions.take():
                # One task per device, as the subscriptions come: a slow database costs each device its own wait.
                self.tasks.spawn(f"pending-commands:{subscription.device_id}", self._send_pending(subscription))

    async def _send_pending(self, subscription: CommandSubscription) -> None:
        async with self.database.session() as session:
            rows = (
                await session.scalars(
                    select(DeviceCommand)
                    .where(
                        DeviceCommand.device_id == subscription.device_id,
                        DeviceCommand.status == CommandStatus.PENDING.value,
                        DeviceCommand.created_at <= subscription.at,
                    )
                    .order_by(DeviceCommand.created_at)
                )
            ).all()
        for row in rows:
            await self._publish_command(row, subscription.topic)
        if rows:
            logger.info("%d pending command(s) sent to device %s on subscribe", len(rows), subscription.device_id)
