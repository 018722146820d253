"""Pending device commands: sent again when the device subscribes, tracked again after a restart.

A command is published once when it is created; a device that is offline without a persistent
session, or whose session did not outlive a restart, misses that publish. The database keeps the
command ``pending`` until a device acknowledges it, so when a device adds a subscription that
covers its command topic, the commands still pending for it (created before the subscription)
are published again, oldest first. A device whose persistent session still holds them
(restored from the broker's state store) re-subscribing to the same filter is not sent them
twice: the broker reports only subscriptions the session did not hold.

The broker's observer learns of the subscription, but the observer is built before the broker
(it is one of the broker's hooks) and cannot publish: it notes the device in
:class:`CommandSubscriptions`, and the command service, built after the broker, takes the
devices from there and publishes (:mod:`mqtthub.telemetry.commands`).

Command messages restored into sessions from the state store get their delivery tracking back
(:func:`track_restored`), so their acknowledgement still moves the command to ``delivered``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from mqtthub.broker.hooks import BrokerMessage, Principal
from mqtthub.broker.retained import filter_matches
from mqtthub.telemetry.routing import command_device
from mqtthub.telemetry.sink import device_of

logger = logging.getLogger(__name__)

CommandDelivered = Callable[[str, str, str], None]
"""Called with (command id, device id, client id) when a device acknowledged a command."""


@dataclass(frozen=True, slots=True)
class CommandSubscription:
    """A device subscribed to its command topic: its commands pending since before ``at`` go out again."""

    device_id: str
    topic: str
    """The internal command topic (with the organization's namespace)."""
    at: datetime


class CommandSubscriptions:
    """Devices that just subscribed to their command topic, waiting to be sent their pending commands.

    Bounded, with the overflow policy *drop newest*: past ``capacity`` waiting devices a new one is
    not noted (counted in :attr:`dropped` and logged); its commands stay pending in the database and go
    out when it subscribes again or when they are sent anew.

    Args:
        clock: Unix time source.
        capacity: Devices that may wait at once.
    """

    def __init__(self, clock: Callable[[], float], *, capacity: int = 10_000) -> None:
        self._clock = clock
        self.capacity = capacity
        self.dropped = 0
        self._waiting: deque[CommandSubscription] = deque()
        self._arrived = asyncio.Event()

    def subscribed(self, principal: Principal, topic_filter: str) -> None:
        """A client added a subscription: note a device whose filter covers its command topic."""
        device_id = device_of(principal)
        if device_id is None:
            return
        topic = f"{principal.mountpoint}devices/{device_id}/commands"
        if not filter_matches(topic_filter.split("/"), topic):
            return
        if len(self._waiting) >= self.capacity:
            self.dropped += 1
            logger.warning(
                "too many devices wait for their pending commands; device %s is not sent them now", device_id
            )
            return
        self._waiting.append(CommandSubscription(device_id, topic, datetime.fromtimestamp(self._clock(), UTC)))
        self._arrived.set()

    async def take(self) -> list[CommandSubscription]:
        """Wait until at least one device is noted, then take every noted device, oldest first."""
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        taken = list(self._waiting)
        self._waiting.clear()
        return taken


def track_restored(message: BrokerMessage, delivered: CommandDelivered) -> None:
    """A message restored into a session: a command gets its delivery tracking back."""
    device_id = command_device(message.topic)
    if device_id is None:
        return
    try:
        command_id = json.loads(message.payload)["commandId"]
    except (ValueError, KeyError, TypeError):
        return  # published to the command topic by someone else: nothing to track
    if isinstance(command_id, str):
        message.on_delivered = partial(delivered, command_id, device_id)
