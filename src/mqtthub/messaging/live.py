"""Live delivery to WebSocket clients: one bounded queue per connection.

The broker hands messages over synchronously on its routing path, so a listener only
appends to its queue and wakes its sender. Overflow policy: **drop oldest** — a slow
WebSocket client loses its oldest undelivered messages (counted in ``dropped``) and never
slows the broker down or grows memory without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from mqtthub.mqtt.topics import topic_matches


class LiveListener:
    """A bounded queue of JSON texts waiting to be sent to one WebSocket client."""

    def __init__(self, organization_id: str, *, readable: Sequence[str] | None = None, max_queued: int = 1000) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.organization_id = organization_id
        self.readable = readable
        """Filters bounding the topics this client may see (None: all of its organization's)."""
        self.max_queued = max_queued
        self.dropped = 0
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()
        self._last_key: object = None
        self.narrowed = False
        """True once the client chose its own filters: the organization's recorded feed stops."""

    def may_read(self, topic: str) -> bool:
        """Whether this client may see a message of ``topic``."""
        return self.readable is None or any(topic_matches(allowed, topic) for allowed in self.readable)

    def put(self, text: str, key: object = None) -> None:
        """Queue ``text``; when full, the oldest queued text is dropped.

        ``key`` identifies the message: a message that reaches the listener through several
        overlapping subscriptions arrives with the same key in a row and is queued once.
        """
        if key is not None:
            if key is self._last_key:
                return
            self._last_key = key
        if len(self._queue) >= self.max_queued:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(text)
        self._ready.set()

    async def get(self) -> str:
        """The next queued text, waiting for one."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)


class LiveFeed:
    """The listeners of every organization; messages go to the listeners of their organization only."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[LiveListener]] = {}

    def attach(self, listener: LiveListener) -> None:
        """Start delivering the organization's recorded messages to ``listener``."""
        self._listeners.setdefault(listener.organization_id, set()).add(listener)

    def detach(self, listener: LiveListener) -> None:
        """Stop delivering to ``listener``; unknown listeners are ignored."""
        listeners = self._listeners.get(listener.organization_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.organization_id]

    def send(self, organization_id: str, topic: str, text: str, key: object = None) -> None:
        """Queue ``text``, a message of ``topic``, for every listener of ``organization_id`` that follows the
        recorded feed and may read ``topic`` (``key`` as in :meth:`LiveListener.put`)."""
        for listener in self._listeners.get(organization_id, ()):
            if not listener.narrowed and listener.may_read(topic):
                listener.put(text, key)

    def count(self, organization_id: str | None = None) -> int:
        """Listeners of one organization, or of all."""
        if organization_id is not None:
            return len(self._listeners.get(organization_id, ()))
        return sum(len(listeners) for listeners in self._listeners.values())
