"""Recorded filters stored once across several hubs, when an external broker can share a durable queue among them.

With the embedded broker one hub takes every message of a recorded filter from its own subscription (:mod:`.taps`).
Several hubs in front of one cluster would each take it, and the history would hold one copy per hub. So with an
external broker that offers it (:class:`SharedRecording`, RabbitMQ: a mirrored durable queue per organization,
bound to the organization's recorded filters), the hubs consume the recorded messages as competing consumers: each
message goes to one hub, which writes its history row and lets the broker forget the message only once the row is
committed. A hub killed at any moment loses nothing: what it had not acknowledged goes to another hub.

:class:`RecordedSink` is what the hubs hand those messages to: the :class:`~mqtthub.broker.hooks.MessageSink`
contract, whose future resolves once the row is committed, and fails (the message goes back to the queue) when it
could not be written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from mqtthub.broker.hooks import BrokerMessage, MessageSink
from mqtthub.messaging.namespace import OrgScope
from mqtthub.messaging.recorder import HistoryRecorder, Record
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH
from mqtthub.tenancy import ORG_PREFIX

logger = logging.getLogger(__name__)

STORED = 0
"""The answer of a stored message (the MQTT 5.0 reason code "success")."""
NOT_STORED = 0x80
"""The answer of a message there is nothing to store of (its topic too long, its organization gone)."""


class SharedRecording(Protocol):
    """An external broker's durable queues of recorded filters, shared by every hub.

    Filters are full internal topics (``org/<short id>/...``). Binding and unbinding are idempotent and run in the
    background: any hub may do either, any number of times.
    """

    def record_into(self, sink: MessageSink) -> None:
        """Consume every organization's recorded messages from now on, each handed to ``sink`` and acknowledged
        to the broker once the sink's future resolves."""
        ...

    def bind_recorded(self, topic_filter: str) -> None:
        """Route the filter's messages to its organization's shared queue."""
        ...

    def unbind_recorded(self, topic_filter: str) -> None:
        """Stop routing them there (what is queued already is still recorded)."""
        ...


ScopeOf = Callable[[str], Awaitable[OrgScope | None]]
"""The scope of the organization with a namespace id (None when there is no such organization)."""


class RecordedSink:
    """Writes each shared recorded message to its organization's history; see the module docstring.

    Args:
        recorder: The history writer.
        scope_of: Finds the organization of a namespace id (the filter may have been recorded through another hub).
        retry_delay: Seconds a message that could not be written waits before it goes back to the queue, so a
            database that is down is not asked again at once by every hub.
    """

    def __init__(self, recorder: HistoryRecorder, scope_of: ScopeOf, *, retry_delay: float = 1.0) -> None:
        self._recorder = recorder
        self._scope_of = scope_of
        self._retry_delay = retry_delay
        self.skipped = 0
        """Messages with nothing to store (topic too long for the history, organization gone)."""

    def offer(self, message: BrokerMessage) -> asyncio.Future[int]:
        """Store ``message``; the future resolves once its row is committed (see the module docstring)."""
        return asyncio.ensure_future(self._store(message))

    async def _store(self, message: BrokerMessage) -> int:
        try:
            return await self._write(message)
        except Exception:
            await asyncio.sleep(self._retry_delay)
            raise

    async def _write(self, message: BrokerMessage) -> int:
        levels = message.topic.split("/", 2)
        scope = await self._scope_of(levels[1]) if len(levels) == 3 and levels[0] == ORG_PREFIX else None
        topic = scope.namespace.external(message.topic) if scope is not None else message.topic
        if scope is None or len(topic) > MAX_RECORDED_TOPIC_LENGTH:
            self.skipped += 1
            logger.debug("nothing to record of a message on %.200s", message.topic)
            return NOT_STORED
        await self._recorder.store(Record.of(scope.organization_id, topic, message))
        return STORED
