"""Applying identity changes to live MQTT connections, once they are committed.

Revoking a token, disabling a device or deleting an organization must disconnect the
clients concerned and end their sessions: a persistent session belongs to the identity that
created it, and an identity that is no longer valid leaves no subscription or queued message
behind for anyone. Kicking them before the change is committed would let a quick reconnect be
authenticated against the old state, so the work is queued on the database session and done
right after its commit (and dropped on rollback).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mqtthub.broker.handle import BrokerHandle
from mqtthub.mqtt.reason_codes import ReasonCode

logger = logging.getLogger(__name__)

_PENDING = "mqtthub.disconnect"
_LISTENING = "mqtthub.disconnect.listening"


def disconnect_now(broker: BrokerHandle, principal_ids: Iterable[str], *, end_sessions: bool = True) -> int:
    """Drop cached authorizations and disconnect every client of these principals; return how many sessions ended.

    With ``end_sessions`` their sessions, persistent ones included, are discarded through the broker
    (no will is sent); without it only their connections close and the sessions stay for the identity.
    """
    ended = 0
    for principal_id in principal_ids:
        broker.invalidate(principal_id)
        if end_sessions:
            ended += broker.discard_sessions(principal_id, ReasonCode.NOT_AUTHORIZED)
        ended += broker.kick(principal_id=principal_id, reason_code=ReasonCode.NOT_AUTHORIZED)
    if ended:
        logger.info("ended %d MQTT session(s) or connection(s) after an access change", ended)
    return ended


def disconnect_after_commit(
    session: AsyncSession, broker: BrokerHandle | None, principal_ids: Iterable[str], *, end_sessions: bool = True
) -> None:
    """Do :func:`disconnect_now` once ``session`` commits (nothing without a broker)."""
    if broker is None:
        return
    info: dict[str, Any] = session.info
    if not info.get(_LISTENING):
        # Registered once per session (sessions live for one request or one command).
        info[_LISTENING] = True
        event.listen(session.sync_session, "after_commit", _after_commit)
        event.listen(session.sync_session, "after_soft_rollback", _after_rollback)
    pending: list[tuple[BrokerHandle, str, bool]] = info.setdefault(_PENDING, [])
    pending.extend((broker, principal_id, end_sessions) for principal_id in principal_ids)


def _after_commit(session: Session) -> None:
    pending: list[tuple[BrokerHandle, str, bool]] = session.info.pop(_PENDING, [])
    for broker, principal_id, end_sessions in pending:
        disconnect_now(broker, (principal_id,), end_sessions=end_sessions)


def _after_rollback(session: Session, previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)
