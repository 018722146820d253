"""Bad input to the real hub gets a 4xx with the JSON error body, never a 500, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.served import LocalHub


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["code"] == code
    return body


async def _own_organization(running: LocalHub) -> str:
    listed = await running.client.get("/api/v1/organizations")
    assert listed.status_code == 200, listed.text
    organization_id: str = listed.json()["organizations"][0]["id"]
    return organization_id


async def test_a_product_of_an_unknown_organization_is_422(running_hub: LocalHub) -> None:
    response = await running_hub.client.post(
        "/api/v1/products", json={"name": "tyres", "organization_id": "no-such-organization"}
    )
    body = _error(response, 422, "validation_error")
    assert body["field"] == "organization_id"
    assert (await running_hub.client.get("/api/v1/products")).json()["products"] == []


async def test_a_broadcast_to_an_unknown_organization_is_404_and_a_null_message_422(running_hub: LocalHub) -> None:
    unknown = await running_hub.client.post("/api/v1/organizations/no-such-organization/broadcast", json={"message": 1})
    _error(unknown, 404, "not_found")
    own = await _own_organization(running_hub)
    null = await running_hub.client.post(f"/api/v1/organizations/{own}/broadcast", json={"message": None})
    body = _error(null, 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "message"]
    sent = await running_hub.client.post(f"/api/v1/organizations/{own}/broadcast", json={"message": {"reboot": True}})
    assert sent.status_code == 202, sent.text


@pytest.mark.parametrize("value", [2**31, 2**63, 10**30])
async def test_huge_offsets_and_ids_are_422(running_hub: LocalHub, value: int) -> None:
    own = await _own_organization(running_hub)
    paths = [
        f"/messages?offset={value}",
        f"/messages?limit={value}",
        f"/api/v1/organizations/{own}/alerts?offset={value}",
        f"/api/v1/organizations/{own}/rejected-messages?offset={value}",
        f"/api/v1/devices/any-device/datastreams?offset={value}",
    ]
    if value >= 2**63:
        paths += [
            f"/api/v1/devices/any-device/telemetry-definitions/{value}",
            f"/api/v1/devices/any-device/datastreams?telemetryDataId={value}",
        ]
    for path in paths:
        body = _error(await running_hub.client.get(path), 422, "validation_error")
        assert body["detail"][0]["type"] in ("less_than_equal", "greater_than_equal"), (path, body)


async def test_the_largest_accepted_offset_answers_an_empty_page(running_hub: LocalHub) -> None:
    own = await _own_organization(running_hub)
    messages = await running_hub.client.get(f"/messages?offset={2**31 - 1}")
    assert messages.status_code == 200, messages.text
    assert messages.json()["messages"] == []
    alerts = await running_hub.client.get(f"/api/v1/organizations/{own}/alerts?offset={2**31 - 1}")
    assert alerts.status_code == 200, alerts.text
    assert alerts.json()["data"] == []


async def test_the_422_of_an_mqtt_config_never_echoes_its_secrets(running_hub: LocalHub) -> None:
    product = await running_hub.client.post("/api/v1/products", json={"name": "tyres"})
    assert product.status_code == 201, product.text
    url = f"/api/v1/products/{product.json()['id']}/mqtt-config"
    secrets = {"password": "hunter2-broker", "client_key": "-----BEGIN PRIVATE KEY-----k3y", "pkcs12_password": "p12pw"}
    topics = {"pattern": "{application_id}/events"}
    bad_port = await running_hub.client.put(
        url, json={"broker": {"host": "broker.example", "port": 70000, **secrets}, "topics": topics}
    )
    missing_host = await running_hub.client.put(url, json={"broker": secrets, "topics": topics})
    too_long = await running_hub.client.put(
        url, json={"broker": {"host": "broker.example", "password": "hunter2-broker" * 100}, "topics": topics}
    )
    for response in (bad_port, missing_host, too_long):
        body = _error(response, 422, "validation_error")
        assert isinstance(body["detail"], list)
        for secret in ("hunter2", "k3y", "p12pw"):
            assert secret not in response.text
    (missing,) = _error(missing_host, 422, "validation_error")["detail"]
    assert missing["loc"] == ["body", "broker", "host"]
    assert missing["input"] == {"password": "***", "client_key": "***", "pkcs12_password": "***"}
    assert _error(too_long, 422, "validation_error")["detail"][0]["input"] == "***"


async def test_unknown_paths_and_methods_are_json(running_hub: LocalHub) -> None:
    _error(await running_hub.client.get("/api/v1/no-such-thing"), 404, "not_found")
    wrong = await running_hub.client.put("/health")
    _error(wrong, 405, "method_not_allowed")
    assert "GET" in wrong.headers["allow"]
