"""Per-product and per-subscription counters and the failure log, written to the database in batches.

Writing after every message costs one transaction per message (about 130 messages/s on
SQLite on a busy two-core machine); batching the increments costs one transaction per
interval, whatever the rate. Counters are flushed every ``interval`` seconds and when the
service stops, so they survive restarts; a crash loses at most one interval of counting.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update

from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.models import ActionFailure, EventSubscription, MqttConfig

logger = logging.getLogger(__name__)


@dataclass
class _Counts:
    messages: int = 0
    executed: int = 0
    failed: int = 0
    last_at: datetime | None = None


@dataclass
class _Pending:
    products: dict[str, _Counts] = field(default_factory=dict)
    subscriptions: dict[str, _Counts] = field(default_factory=dict)
    failures: list[ActionFailure] = field(default_factory=list)


class StatsRecorder:
    """Collects counter increments and failures in memory; :meth:`flush` writes them in one transaction.

    The buffer is bounded: past ``max_failures`` unflushed failures the oldest are dropped
    (their counts are still kept), so a database outage cannot grow memory without limit.
    """

    def __init__(self, database: Database, *, max_failures: int = 10_000) -> None:
        self._database = database
        self._pending = _Pending()
        self._max_failures = max_failures
        self._lock = asyncio.Lock()

    def message(self, product_id: str, at: datetime) -> None:
        """A message arrived for ``product_id``."""
        counts = self._pending.products.setdefault(product_id, _Counts())
        counts.messages += 1
        counts.last_at = at

    def matched(self, subscription_id: str, at: datetime, executed: int, failed: int) -> None:
        """A subscription handled a message: ``executed`` actions ran, ``failed`` failed."""
        counts = self._pending.subscriptions.setdefault(subscription_id, _Counts())
        counts.messages += 1
        counts.executed += executed
        counts.failed += failed
        counts.last_at = at

    def failure(self, product_id: str, subscription_id: str, index: int, kind: str, error: str, topic: str) -> None:
        """An action failed."""
        if len(self._pending.failures) >= self._max_failures:
            del self._pending.failures[0]
        self._pending.failures.append(
            ActionFailure(
                product_id=product_id,
                subscription_id=subscription_id,
                action_index=index,
                action_type=kind,
                error=error[:2000],
                topic=topic[:1000],
                created_at=utcnow(),
            )
        )

    async def flush(self) -> None:
        """Write everything collected so far; on a database error it is kept for the next flush."""
        async with self._lock:
            pending, self._pending = self._pending, _Pending()
            if not (pending.products or pending.subscriptions or pending.failures):
                return
            try:
                async with self._database.session() as session:
                    for product_id, counts in pending.products.items():
                        await session.execute(
                            update(MqttConfig)
                            .where(MqttConfig.product_id == product_id)
                            .values(
                                messages_received=MqttConfig.messages_received + counts.messages,
                                last_message_at=counts.last_at,
                            )
                        )
                    for subscription_id, counts in pending.subscriptions.items():
                        await session.execute(
                            update(EventSubscription)
                            .where(EventSubscription.id == subscription_id)
                            .values(
                                messages_received=EventSubscription.messages_received + counts.messages,
                                last_message_at=counts.last_at,
                                actions_executed=EventSubscription.actions_executed + counts.executed,
                                actions_failed=EventSubscription.actions_failed + counts.failed,
                            )
                        )
                    session.add_all(pending.failures)
            except Exception:  # keep counting; the next flush retries
                logger.exception("integrations: cannot write statistics; keeping them for the next flush")
                self._merge_back(pending)

    def _merge_back(self, pending: _Pending) -> None:
        for source, target in (
            (pending.products, self._pending.products),
            (pending.subscriptions, self._pending.subscriptions),
        ):
            for key, counts in source.items():
                current = target.setdefault(key, _Counts())
                current.messages += counts.messages
                current.executed += counts.executed
                current.failed += counts.failed
                current.last_at = current.last_at or counts.last_at
        failures = [ActionFailure(**_columns(failure)) for failure in pending.failures]
        self._pending.failures[:0] = failures[-self._max_failures :]

    async def run(self, interval: float) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.flush()


def _columns(failure: ActionFailure) -> dict[str, object]:
    """A failed-to-write row's values, for a fresh object (the old one belongs to a closed session)."""
    names = ("product_id", "subscription_id", "action_index", "action_type", "error", "topic", "created_at")
    return {name: getattr(failure, name) for name in names}
