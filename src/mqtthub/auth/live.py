"""Identity changes that live MQTT connections and caches must follow, once they are committed.

Revoking a token, disabling a device or deleting an organization must disconnect the clients concerned and end
their sessions: a persistent session belongs to the identity that created it, and an identity that is no longer
valid leaves no subscription or queued message behind for anyone. Kicking them before the change is committed
would let a quick reconnect be authenticated against the old state, so services record an :class:`AccessEnded`
on their session (:mod:`mqtthub.db.changes`) and the hub applies it right after the commit. :class:`DeviceChanged`
tells whoever caches devices (telemetry's directory) to look again; :class:`OrganizationDeleted` tells the
services that run something per organization (recorded topic filters, integration connectors) to stop it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.broker.handle import BrokerHandle
from mqtthub.db.changes import record
from mqtthub.mqtt.reason_codes import ReasonCode

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccessEnded:
    """These principals' credentials stopped being valid: close their connections.

    With ``end_sessions`` their sessions, persistent ones included, are discarded too; without it (one of a
    device's several tokens revoked) the sessions stay for the identity.
    """

    principal_ids: tuple[str, ...]
    end_sessions: bool = True


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """A device was changed, disabled, enabled or deleted."""

    device_id: str


@dataclass(frozen=True, slots=True)
class OrganizationDeleted:
    """An organization was deleted with everything in it."""

    organization_id: str


def end_access_after_commit(session: AsyncSession, principal_ids: Iterable[str], *, end_sessions: bool = True) -> None:
    """Record an :class:`AccessEnded`, applied once ``session`` commits."""
    record(session, AccessEnded(tuple(principal_ids), end_sessions))


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


def apply_access_ended(broker: BrokerHandle, change: AccessEnded) -> None:
    """The hub's handler for :class:`AccessEnded`."""
    disconnect_now(broker, change.principal_ids, end_sessions=change.end_sessions)
