"""``$SYS`` topics: broker statistics published as retained messages at an interval.

Only the global namespace sees them: a client with a mountpoint subscribes inside
its own prefix, where no ``$SYS`` topic exists.
"""

from __future__ import annotations

import asyncio
import time

from mqtthub.broker.core import BrokerCore
from mqtthub.broker.hooks import BrokerMessage


def sys_values(core: BrokerCore) -> dict[str, int]:
    """Current values keyed by topic (below ``$SYS/broker/``)."""
    stats = core.stats
    return {
        "uptime": int(time.time() - stats.started_at),
        "clients/connected": stats.clients_connected,
        "clients/total": stats.clients_total,
        "messages/received": stats.messages_received,
        "messages/sent": stats.messages_sent,
        "messages/dropped": stats.messages_dropped,
        "bytes/received": stats.bytes_received,
        "bytes/sent": stats.bytes_sent,
        "subscriptions/count": len(core.trie),
        "retained messages/count": len(core.retained),
    }


def publish_sys(core: BrokerCore) -> None:
    """Publish every ``$SYS/broker/...`` value once, retained."""
    now = time.time()
    for name, value in sys_values(core).items():
        message = BrokerMessage(topic=f"$SYS/broker/{name}", payload=str(value).encode(), retain=True, received_at=now)
        core.route(message, None)


async def run_sys_topics(core: BrokerCore, interval: float) -> None:
    """Publish ``$SYS`` values every ``interval`` seconds until cancelled."""
    while True:
        publish_sys(core)
        await asyncio.sleep(interval)
