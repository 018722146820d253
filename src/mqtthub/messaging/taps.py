"""The messaging service's in-process broker subscriptions, and the one place a message is taken once.

There is one broker subscription per organization and filter, shared by everything that wants the filter
(the organization recording it, ``/ws`` clients following it) and counted by reference, so a filter wanted
twice costs the broker one subscription. Overlapping filters of one organization still match one message
several times: the broker hands the same message object to each of them in a row during one routing pass,
and :class:`BrokerTaps` passes it on once. Everything downstream (the history, every live client) can rely
on that.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from mqtthub.broker.handle import BrokerHandle, LocalSubscription
from mqtthub.broker.hooks import BrokerMessage
from mqtthub.errors import StateError, UnavailableError
from mqtthub.messaging.namespace import OrgScope

logger = logging.getLogger(__name__)


class _Tap:
    """One broker subscription of an organization's filter and how many users want it."""

    __slots__ = ("handle", "refs", "scope")

    def __init__(self, scope: OrgScope) -> None:
        self.scope = scope
        self.handle: LocalSubscription | None = None
        self.refs = 0


class BrokerTaps:
    """Reference-counted broker subscriptions per (organization, filter); see the module docstring.

    Args:
        broker: The broker (a stopped one answers :class:`~mqtthub.errors.StateError`, taken as unavailable).
        take: Called once per message and organization, with the organization's scope.
    """

    def __init__(self, broker: BrokerHandle, take: Callable[[OrgScope, BrokerMessage], None]) -> None:
        self._broker = broker
        self._take = take
        self._taps: dict[tuple[str, str], _Tap] = {}
        self._last: dict[str, BrokerMessage] = {}

    def add(self, scope: OrgScope, topic_filter: str, *, required: bool = True) -> None:
        """Want a checked filter of an organization (one more reference).

        Raises:
            UnavailableError: the broker is not running and ``required`` (otherwise the filter is wanted
                anyway and subscribed by the next :meth:`add` or :meth:`ensure` that finds the broker up).
        """
        key = (scope.organization_id, topic_filter)
        tap = self._taps.setdefault(key, _Tap(scope))
        try:
            self._open(topic_filter, tap)
        except UnavailableError:
            if required:
                if tap.refs == 0:
                    del self._taps[key]
                raise
            logger.warning("broker not running: filter %r is subscribed once it is", topic_filter)
        tap.refs += 1

    def ensure(self, organization_id: str, topic_filter: str) -> None:
        """Subscribe a wanted filter whose subscription is missing (the broker was down when it was added).

        Raises:
            UnavailableError: the broker is not running.
        """
        tap = self._taps.get((organization_id, topic_filter))
        if tap is not None:
            self._open(topic_filter, tap)

    def active(self, organization_id: str, topic_filter: str) -> bool:
        """Whether the filter is wanted and subscribed with the broker."""
        tap = self._taps.get((organization_id, topic_filter))
        return tap is not None and tap.handle is not None

    def discard(self, organization_id: str, topic_filter: str) -> None:
        """Drop one reference; the broker subscription ends with the last. Unknown filters are ignored."""
        key = (organization_id, topic_filter)
        tap = self._taps.get(key)
        if tap is None:
            return
        tap.refs -= 1
        if tap.refs > 0:
            return
        del self._taps[key]
        self._close(tap)
        if not any(org == organization_id for org, _ in self._taps):
            self._last.pop(organization_id, None)  # keep no message of an organization nothing follows

    def clear(self) -> None:
        """End every broker subscription (the service is stopping)."""
        for tap in self._taps.values():
            self._close(tap)
        self._taps.clear()
        self._last.clear()

    def __len__(self) -> int:
        return len(self._taps)

    def _open(self, topic_filter: str, tap: _Tap) -> None:
        if tap.handle is not None:
            return
        try:
            tap.handle = self._broker.subscribe(tap.scope.namespace.internal(topic_filter), self._taker(tap.scope))
        except StateError as exc:
            raise UnavailableError(f"the MQTT broker is not available: {exc.message}") from None

    def _close(self, tap: _Tap) -> None:
        if tap.handle is None:
            return
        with contextlib.suppress(StateError):
            self._broker.unsubscribe(tap.handle)
        tap.handle = None

    def _taker(self, scope: OrgScope) -> Callable[[BrokerMessage], None]:
        organization_id = scope.organization_id

        def take(message: BrokerMessage) -> None:
            if self._last.get(organization_id) is message:
                return  # the same message through another overlapping filter of this organization
            self._last[organization_id] = message
            self._take(scope, message)

        return take
