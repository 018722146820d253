"""Rebuilding broker state from its stored records when the broker starts."""

from __future__ import annotations

import logging
import time
from collections import deque

from mqtthub.broker.core import BrokerCore
from mqtthub.broker.persistence import HeldRecord, StateJournal, StoredState
from mqtthub.broker.session import Outgoing, Session, SessionKey
from mqtthub.broker.subscriptions import Subscription

logger = logging.getLogger(__name__)


def restore(core: BrokerCore, journal: StateJournal, state: StoredState) -> None:
    """Rebuild retained messages and stored sessions in ``core`` (before any client connects).

    A session whose expiry interval passed while the broker was down is not restored and leaves
    the store; a will that fell due meanwhile is published now [MQTT-3.1.3-9]. Expiry counts from
    the session's last disconnect, or from now for a session that was connected when the process died.
    """
    now = time.time()
    for message in state.retained:
        core.retained.set(message)
    held_by: dict[SessionKey, list[HeldRecord]] = {}
    for held in state.held:
        held_by.setdefault(held.session_key, []).append(held)
        journal.start_ids_after(held.store_id)
    restored = expired = 0
    for record in state.sessions:
        session = Session(record.key, record.principal, max_queued=core.config.max_queued_messages, stats=core.stats)
        session.expiry_interval = record.expiry_interval
        session.disconnected_at = record.disconnected_at if record.disconnected_at is not None else now
        session.will = record.will
        session.will_at = record.will_at
        if not core.resume_timers(session, now):
            expired += 1
            journal.session_discarded(session)
            continue
        restored += 1
        core.sessions[session.key] = session
        for packet_id in record.inbound_qos2:
            session.receive_qos2(packet_id)
        for sub in record.subscriptions:
            options = (sub.qos, sub.no_local, sub.retain_as_published, sub.retain_handling, sub.identifier)
            core.subscribe(session, Subscription(session, sub.topic_filter, *options, sub.share_group))
        _restore_held(core, session, held_by.get(session.key, []))
        session.journal = journal
        if record.will is not None and session.will is None:
            session.changed()  # published while restoring: not again next time
    if restored or expired or state.retained:
        logger.info(
            "broker state restored: %d retained messages, %d sessions (%d more expired while stopped)",
            len(state.retained),
            restored,
            expired,
        )


def _restore_held(core: BrokerCore, session: Session, records: list[HeldRecord]) -> None:
    queue: deque[Outgoing] = deque()
    for held in records:
        group = None
        if held.share_group is not None and held.share_filter is not None:
            group = core.trie.group(held.share_filter, held.share_group)
        if core.observer is not None:
            try:
                core.observer.message_restored(held.message)
            except Exception:
                logger.exception("broker observer failed on a restored message")
        out = Outgoing(
            held.message, held.qos, held.retain, held.identifiers, group, held.packet_id, held.released, held.store_id
        )
        if held.packet_id and held.packet_id not in session.inflight:
            session.inflight[held.packet_id] = out
        else:
            out.packet_id = 0
            queue.append(out)
    session.queue = queue
