"""Connection storms on a full hub: every client is admitted, few database queries, revocation still immediate."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mqtthub.mqtt.packets import PROTOCOL_V311
from tests.integration.auth.mqttclient import connect
from tests.integration.auth.test_acceptance import api_tenant
from tests.integration.broker.support import RawClient
from tests.support.served import hub_settings, serve_in_process

WAIT = 10.0


async def connack_code(address: tuple[str, int], client_id: str, username: str | None, password: str | None) -> int:
    client = await RawClient.open(address, PROTOCOL_V311)
    try:
        connack = await client.connect(
            client_id, username=username, password=None if password is None else password.encode()
        )
        return connack.reason_code
    finally:
        await client.close()


async def test_a_storm_of_anonymous_device_and_app_clients_is_admitted_with_few_queries(
    database_url: str, tmp_path: Path
) -> None:
    settings = hub_settings(tmp_path, database_url=database_url, allow_anonymous=True, mqtt_auth_cache_ttl=600)
    async with serve_in_process(settings) as running:
        tenant = await api_tenant(running.client, "Acme", "acme0001")
        devices = f"/api/v1/organizations/{tenant['org_id']}/devices"
        device_credentials = [(tenant["device_id"], tenant["device_token"])]
        for n in range(9):
            device = (await running.client.post(devices, json={"name": f"d{n}"})).json()
            token = (await running.client.post(f"{devices}/{device['id']}/tokens", json={})).json()["token"]
            device_credentials.append((device["id"], token))
        tokens = f"/api/v1/organizations/{tenant['org_id']}/mqtt-tokens"
        app_tokens = [(await running.client.post(tokens, json={"name": f"app{n}"})).json()["token"] for n in range(3)]
        credentials: list[tuple[str | None, str | None]] = [(None, None)] * 60
        credentials += [device_credentials[n % 10] for n in range(90)]
        credentials += [(app_tokens[n % 3], app_tokens[n % 3]) for n in range(30)]

        address = ("127.0.0.1", running.mqtt_port)
        codes = await asyncio.gather(
            *(connack_code(address, f"storm-{n}", user, password) for n, (user, password) in enumerate(credentials))
        )

        assert codes == [0] * len(credentials)
        # At most one query per distinct credential (10 device tokens, 3 API tokens, the anonymous
        # organization): clients presenting one that is being looked up or was just accepted wait for
        # that answer instead of asking again.
        assert running.hub.authenticator.lookup_queries <= 14
        await running.hub.authenticator.last_used.settle()
        listed = (await running.client.get(tokens)).json()["tokens"]
        assert all(token["last_used_at"] is not None for token in listed)


async def test_revoking_a_remembered_credential_refuses_it_at_once(database_url: str, tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, database_url=database_url, mqtt_auth_cache_ttl=600)
    async with serve_in_process(settings) as running:
        port = ("127.0.0.1", running.mqtt_port)[1]
        authenticator = running.hub.authenticator
        tenant = await api_tenant(running.client, "Acme", "acme0001")
        tokens = f"/api/v1/organizations/{tenant['org_id']}/mqtt-tokens"
        app = (await running.client.post(tokens, json={"name": "dashboard"})).json()
        device_token_id = (
            await running.client.get(f"/api/v1/organizations/{tenant['org_id']}/devices/{tenant['device_id']}/tokens")
        ).json()["tokens"][0]["id"]

        # Connected twice each: the second CONNECT is answered from the cache.
        for user, password in ((tenant["device_id"], tenant["device_token"]), (app["token"], app["token"])):
            code, first = await connect(port, user, password, client_id=f"{user[:8]}-first")
            assert code == 0
            first.close()
        hits = authenticator.cache.hits
        code, device = await connect(port, tenant["device_id"], tenant["device_token"], client_id="device")
        assert code == 0
        code, dashboard = await connect(port, app["token"], app["token"], client_id="dashboard")
        assert code == 0
        assert authenticator.cache.hits == hits + 2
        try:
            revoked = await running.client.delete(
                f"/api/v1/organizations/{tenant['org_id']}/devices/{tenant['device_id']}/tokens/{device_token_id}"
            )
            assert revoked.status_code == 200
            assert await device.wait_disconnected(WAIT)
            code, _ = await connect(port, tenant["device_id"], tenant["device_token"], client_id="device-again")
            assert code == 5

            assert (await running.client.delete(f"{tokens}/{app['token_id']}")).status_code == 200
            assert await dashboard.wait_disconnected(WAIT)
            code, _ = await connect(port, app["token"], app["token"], client_id="dashboard-again")
            assert code == 5
        finally:
            device.close()
            dashboard.close()
