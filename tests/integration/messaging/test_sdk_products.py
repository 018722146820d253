"""The SDK's product and integration methods against a real hub, pointing a product at the hub's own broker."""

from __future__ import annotations

import pytest

from mqtthub.client import AsyncHubClient, HubClient, NotFoundError, ValidationError
from tests.integration.messaging.conftest import wait_for
from tests.support.access import api_token
from tests.support.served import ThreadedHub


def test_products_and_their_mqtt_configuration(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    broker = {"host": "127.0.0.1", "port": shared_hub.mqtt_port, "username": token, "password": token}
    with HubClient(shared_hub.http_url, token=shared_hub.admin.token) as hub:
        product = hub.create_product("Press line", description="line 1 presses")
        assert (product.organization_id, product.mqtt_configured) == (shared_hub.admin.org_id, False)
        assert product.id in [p.id for p in hub.list_products().products]
        assert hub.update_product(product.id, name="Press line 1").name == "Press line 1"

        works = hub.test_mqtt_connection(product.id, broker)
        assert (works.status, works.connected) == ("success", True)
        refused = hub.test_mqtt_connection(product.id, broker | {"password": "wrong"})
        assert (refused.status, refused.connected) == ("error", False)

        saved = hub.put_mqtt_config(product.id, broker)
        assert saved
        config = hub.get_mqtt_config(product.id)
        assert config["mqtt_config"]["broker"]["password"] == "***"  # never shown again
        assert hub.get_product(product.id).mqtt_configured is True
        wait_for(lambda: hub.get_mqtt_status(product.id), "a connection status")
        assert "subscriptions" in hub.list_event_subscriptions(product.id)
        assert hub.reconnect_mqtt(product.id)
        assert hub.delete_mqtt_config(product.id)
        with pytest.raises(ValidationError):
            hub.put_mqtt_config(product.id, {"port": 0})
        hub.delete_product(product.id)
        with pytest.raises(NotFoundError):
            hub.get_product(product.id)


async def test_async_products(shared_hub: ThreadedHub) -> None:
    async with AsyncHubClient(shared_hub.http_url, token=shared_hub.admin.token) as hub:
        product = await hub.create_product("Async product")
        assert (await hub.get_product(product.id)).name == "Async product"
        await hub.delete_product(product.id)
        assert product.id not in [p.id for p in (await hub.list_products()).products]
