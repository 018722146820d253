"""Committed changes, and who learns of them.

A service that changes something other parts act on (a credential revoked, a device disabled, a configuration
replaced) records a small event on its database session with :func:`record`. When that session commits, the
events go, in order, to the handlers subscribed on the :class:`ChangeBus` of the :class:`~mqtthub.db.Database`
that made the session (``database.changes``); on rollback, or when the commit fails, they are dropped. So a
change takes effect only once it is durable, and a service names what changed without knowing who cares: the
services that follow a change subscribe to their database's bus when they start, and the composition root
wires the components that know no database (the broker).

Handlers run synchronously right after the commit, before the request that made the change is answered. A
handler whose work takes time (a connector reconnecting) schedules it in its service's background tasks.

The CLI works on the database of a hub it cannot reach: nobody in its process follows its events, and a
running hub learns of such changes by revalidating.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

BUS_KEY = "mqtthub.changes.bus"
_PENDING = "mqtthub.changes.pending"
_LISTENING = "mqtthub.changes.listening"

C = TypeVar("C")


class ChangeBus:
    """Handlers by event type; each committed event is handed to the handlers of its exact type, in order."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type[C], handler: Callable[[C], None]) -> None:
        """Call ``handler`` with every committed event of type ``kind`` (synchronously, right after the commit)."""
        self._handlers.setdefault(kind, []).append(handler)

    def publish(self, change: object) -> None:
        """Hand ``change`` to its handlers now; a failing handler is logged and does not stop the others."""
        for handler in self._handlers.get(type(change), ()):
            try:
                handler(change)
            except Exception:  # one subscriber's bug must not undo what the commit already made true
                logger.exception("handling %s failed", type(change).__name__)


def record(session: AsyncSession, change: object) -> None:
    """Publish ``change`` on the session's bus once the session commits (dropped on rollback or without a bus)."""
    info: dict[str, Any] = session.info
    if info.get(BUS_KEY) is None:
        return
    if not info.get(_LISTENING):
        info[_LISTENING] = True
        event.listen(session.sync_session, "after_commit", _after_commit)
        event.listen(session.sync_session, "after_soft_rollback", _after_rollback)
    info.setdefault(_PENDING, []).append(change)


def _after_commit(session: Session) -> None:
    bus: ChangeBus = session.info[BUS_KEY]
    for change in session.info.pop(_PENDING, []):
        bus.publish(change)


def _after_rollback(session: Session, previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)
