"""Integrations run once across the hubs: each product's connector runs on the hub holding its lease.

Two hubs in external broker mode on one PostgreSQL database, and a remote Mosquitto whose messages trigger a
webhook. The subscription is not shared on the remote broker, so only the lease keeps the webhook from firing
once per hub. When the holder is killed (``kill -9``), its lease dies with its database connection and the
other hub takes the connector over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.integrations.conftest import publish, running_mosquitto
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Certificates, Mosquitto
from tests.integration.integrations.servers import HTTPRecorder, http_recorder
from tests.integration.observability.scrape import scrape
from tests.integration.scaleout.conftest import Scaled, scaled_system
from tests.integration.telemetry.hubflows import Admin, admin_client, poll
from tests.support.rabbitmq import RabbitCluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

TOPIC = "plant/line-1/events"


@pytest.fixture(scope="module")
def leased(
    rabbit: RabbitCluster, database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scaled]:
    """The two hubs, named, allowed to reach the test's Mosquitto and webhook, taking free leases every 0.2 s."""
    workdir = tmp_path_factory.mktemp("leased")
    extra: dict[str, Any] = {
        "outbound_allow": "127.0.0.1",
        "integration_lease_interval": 0.2,
        "integration_reconnect_min": 0.1,
        "integration_reconnect_max": 1.0,
    }
    with scaled_system(rabbit, database, workdir, **extra) as scaled:
        yield scaled


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mosquitto", Certificates.generate()) as broker:
        yield broker


async def configure(admin: Admin, broker: Mosquitto, webhook: HTTPRecorder) -> str:
    product = await admin.call("POST", "/api/v1/products", json={"name": "line-1"}, expect=201)
    base = f"/api/v1/products/{product['id']}/mqtt-config"
    broker_body = {"host": "127.0.0.1", "port": broker.tcp_port, "use_tls": False, "verify_cert": False}
    broker_body |= {"username": USERNAME, "password": PASSWORD, "client_id": None, "clean_session": True}
    topics = {"prefix": "plant", "pattern": "line-1/events", "use_shared": False, "qos": 1}
    await admin.call("PUT", base, json={"broker": broker_body, "topics": topics})
    action = {"type": "webhook", "url": f"http://127.0.0.1:{webhook.port}/hook", "retries": 0, "timeout": 2}
    await admin.call("POST", f"{base}/subscriptions", json={"name": "tick", "actions": [action]}, expect=201)
    return str(product["id"])


async def statuses(admins: list[Admin], product_id: str) -> list[dict[str, Any]]:
    path = f"/api/v1/products/{product_id}/mqtt-config/status"
    return [await admin.call("GET", path) for admin in admins]


async def ticks(broker: Mosquitto, webhook: HTTPRecorder, count: int) -> None:
    """Publish one tick on the remote broker and wait until the webhook has fired ``count`` times in all."""
    await asyncio.to_thread(publish, broker, TOPIC, [b'{"event": "tick"}'])
    await poll(lambda: asyncio.sleep(0, len(webhook.requests) >= count))


async def test_one_connector_per_product_across_hubs_and_hand_over_on_kill_9(leased: Scaled, remote: Mosquitto) -> None:
    async with http_recorder() as webhook, admin_client(leased.hubs[0]) as admin_a, admin_client(leased.hubs[1]) as b:
        admins = [admin_a, b]
        product_id = await configure(admin_a, remote, webhook)

        async def one_subscribed_holder() -> list[dict[str, Any]] | None:
            found = await statuses(admins, product_id)
            subscribed = [status for status in found if status["subscribed_topics_count"] == 1]
            return found if len(subscribed) == 1 and found[0]["hub"] == found[1]["hub"] else None

        first = await poll(one_subscribed_holder)
        holder = first[0]["hub"]
        holder_index = 0 if first[0]["subscribed_topics_count"] == 1 else 1
        assert holder is not None
        assert not first[1 - holder_index]["connected"]

        # The other hub knows the product (it is configured in the shared database) and leaves it to the holder.
        standby = ("mqtthub_integration_connectors", frozenset({("state", "standby")}))
        other = leased.hubs[1 - holder_index]
        await poll(lambda: asyncio.sleep(0, scrape(other.http_url + "/metrics").get(standby) == 1))
        assert scrape(leased.hubs[holder_index].http_url + "/metrics")[standby] == 0

        await ticks(remote, webhook, 1)
        await asyncio.sleep(1.0)  # a second connector would have fired by now
        assert len(webhook.requests) == 1

        leased.hubs[holder_index].kill()
        leased.hubs[holder_index].process.wait(timeout=30)

        async def taken_over() -> bool:
            (status,) = await statuses([admins[1 - holder_index]], product_id)
            return bool(status["subscribed_topics_count"] == 1 and status["hub"] != holder)

        await poll(taken_over)
        await ticks(remote, webhook, 2)
        await asyncio.sleep(1.0)
        assert len(webhook.requests) == 2
