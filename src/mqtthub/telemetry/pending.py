"""Pending device commands: sent again when the device subscribes, tracked again after a restart.

A command is published once when it is created; a device that is offline without a persistent
session, or whose session did not outlive a restart, misses that publish. The database keeps the
command ``pending`` until a device acknowledges it, so when a device adds a subscription that
covers its command topic, the commands still pending for it (created before the subscription)
are published again, oldest first. A device whose persistent session still holds them
(restored from the broker's state store) re-subscribing to the same filter is not sent them
twice: the broker reports only subscriptions the session did not hold.

Command messages restored into sessions from the state store get their delivery tracking back
(``on_delivered``), so their acknowledgement still moves the command to ``delivered``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.broker.retained import filter_matches
from mqtthub.db import Database
from mqtthub.errors import StateError
from mqtthub.models import DeviceCommand
from mqtthub.models.telemetry import CommandStatus
from mqtthub.telemetry.routing import command_device
from mqtthub.telemetry.sink import device_of

logger = logging.getLogger(__name__)

PublishCommand = Callable[[DeviceCommand, str], Awaitable[None]]
"""Publishes a command row to an internal command topic, tracking its delivery."""
CommandDelivered = Callable[[str, str, str], None]
"""Called with (command id, device id, client id) when a device acknowledged a command."""
Spawn = Callable[[str, Coroutine[Any, Any, None]], None]
"""Runs a task in the owner's background tasks (:meth:`mqtthub.background.BackgroundTasks.spawn`)."""


class PendingCommands:
    """See the module docstring.

    Args:
        database: Where commands are.
        publish: Publishes one command (with delivery tracking).
        delivered: Records a command as delivered.
        clock: Unix time source.
        spawn: Runs the sending of a device's pending commands in the owner's task group.
    """

    def __init__(
        self,
        database: Database,
        publish: PublishCommand,
        delivered: CommandDelivered,
        clock: Callable[[], float],
        *,
        spawn: Spawn,
    ) -> None:
        self._database = database
        self._publish = publish
        self._delivered = delivered
        self._clock = clock
        self._spawn = spawn

    def subscribed(self, principal: Principal, topic_filter: str) -> None:
        """A client added a subscription: if it is a device and the filter covers its commands, send them."""
        device_id = device_of(principal)
        if device_id is None:
            return
        topic = f"{principal.mountpoint}devices/{device_id}/commands"
        if not filter_matches(topic_filter.split("/"), topic):
            return
        before = datetime.fromtimestamp(self._clock(), UTC)
        try:
            self._spawn(f"pending-commands:{device_id}", self._send_pending(device_id, topic, before))
        except StateError:
            logger.info("device %s subscribed to its commands while telemetry is stopped", device_id)

    def restored(self, message: BrokerMessage) -> None:
        """A message restored into a session: a command gets its delivery tracking back."""
        device_id = command_device(message.topic)
        if device_id is None:
            return
        try:
            command_id = json.loads(message.payload)["commandId"]
        except (ValueError, KeyError, TypeError):
            return  # published to the command topic by someone else: nothing to track
        if isinstance(command_id, str):
            message.on_delivered = partial(self._delivered, command_id, device_id)

    async def _send_pending(self, device_id: str, topic: str, before: datetime) -> None:
        try:
            async with self._database.session() as session:
                rows = (
                    await session.scalars(
                        select(DeviceCommand)
                        .where(
                            DeviceCommand.device_id == device_id,
                            DeviceCommand.status == CommandStatus.PENDING.value,
                            DeviceCommand.created_at <= before,
                        )
                        .order_by(DeviceCommand.created_at)
                    )
                ).all()
            for row in rows:
                await self._publish(row, topic)
        except Exception:
            logger.exception("pending commands of device %s could not be sent", device_id)
            return
        if rows:
            logger.info("%d pending command(s) sent to device %s on subscribe", len(rows), device_id)
