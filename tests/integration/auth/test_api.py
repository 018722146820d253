"""The identity endpoints over real HTTP: roles, organizations, users, devices, tokens, certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from mqtthub.auth.broker_hooks import DatabaseAuthenticator
from mqtthub.broker.hooks import ConnectInfo
from mqtthub.errors import AuthenticationRefused
from tests.support.served import LocalHub


async def make_org(running: LocalHub, name: str = "Acme", short_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if short_id:
        body["short_id"] = short_id
    response = await running.client.post("/api/v1/organizations", json=body)
    assert response.status_code == 201, response.text
    organization: dict[str, Any] = response.json()
    return organization


async def make_user(running: LocalHub, org_id: str, email: str, role: str) -> httpx.AsyncClient:
    response = await running.client.post(
        f"/api/v1/organizations/{org_id}/users", json={"email": email, "password": "long enough", "role": role}
    )
    assert response.status_code == 201, response.text
    return await running.login(email, "long enough")


def info(username: str, password: str) -> ConnectInfo:
    return ConnectInfo(
        client_id="c", username=username, password=password.encode(), protocol_level=4, listener="tcp", peer="x:1"
    )


async def test_organizations_for_platform_admins_and_members(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub, "Acme Corp", "acme0001")
    assert acme["short_id"] == "acme0001"
    generated = await make_org(running_hub, "Globex")
    assert generated["short_id"].startswith("globex")
    duplicate = await running_hub.client.post("/api/v1/organizations", json={"name": "x", "short_id": "acme0001"})
    assert duplicate.status_code == 409
    assert duplicate.json()["success"] is False
    bad = await running_hub.client.post("/api/v1/organizations", json={"name": "x", "short_id": "NO"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "short_id"
    listed = (await running_hub.client.get("/api/v1/organizations")).json()
    assert listed["count"] == 3  # with the default organization

    member = await make_user(running_hub, acme["id"], "member@acme.test", "org_member")
    async with member:
        own = (await member.get("/api/v1/organizations")).json()
        assert [organization["id"] for organization in own["organizations"]] == [acme["id"]]
        assert (await member.get(f"/api/v1/organizations/{acme['id']}")).status_code == 200
        assert (await member.get(f"/api/v1/organizations/{generated['id']}")).status_code == 403
        assert (await member.post("/api/v1/organizations", json={"name": "mine"})).status_code == 403
        renamed = await member.patch(f"/api/v1/organizations/{acme['id']}", json={"name": "x"})
        assert renamed.status_code == 403
    renamed = await running_hub.client.patch(f"/api/v1/organizations/{acme['id']}", json={"name": "Acme Inc"})
    assert renamed.json()["name"] == "Acme Inc"
    assert (await running_hub.client.delete(f"/api/v1/organizations/{generated['id']}")).status_code == 204
    assert (await running_hub.client.get(f"/api/v1/organizations/{generated['id']}")).status_code == 404
    own_org = running_hub.hub.first_run
    assert own_org is not None
    refused = await running_hub.client.delete(f"/api/v1/organizations/{own_org.organization_id}")
    assert refused.status_code == 409


async def test_users_are_managed_by_org_admins_only(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub)
    other = await make_org(running_hub, "Other")
    admin = await make_user(running_hub, acme["id"], "admin@acme.test", "org_admin")
    async with admin:
        created = await admin.post(
            f"/api/v1/organizations/{acme['id']}/users",
            json={"email": "New@Acme.test", "password": "long enough"},
        )
        assert created.status_code == 201
        assert created.json()["email"] == "new@acme.test"
        assert created.json()["role"] == "org_member"
        assert "password_hash" not in created.json()
        taken = await admin.post(
            f"/api/v1/organizations/{acme['id']}/users", json={"email": "new@acme.test", "password": "long enough"}
        )
        assert taken.status_code == 409
        escalate = await admin.post(
            f"/api/v1/organizations/{acme['id']}/users",
            json={"email": "boss@acme.test", "password": "long enough", "role": "platform_admin"},
        )
        assert escalate.status_code == 403
        elsewhere = await admin.post(
            f"/api/v1/organizations/{other['id']}/users", json={"email": "x@y.z", "password": "long enough"}
        )
        assert elsewhere.status_code == 403
        short = await admin.post(
            f"/api/v1/organizations/{acme['id']}/users", json={"email": "s@acme.test", "password": "short"}
        )
        assert short.status_code == 422
        listed = (await admin.get(f"/api/v1/organizations/{acme['id']}/users")).json()
        assert {user["email"] for user in listed["users"]} == {"admin@acme.test", "new@acme.test"}
        deactivated = await admin.patch(
            f"/api/v1/organizations/{acme['id']}/users/{created.json()['id']}", json={"is_active": False}
        )
        assert deactivated.json()["is_active"] is False
    # A deactivated user can neither log in nor use a token obtained before.
    response = await running_hub.client.post(
        "/api/v1/auth/login", json={"email": "new@acme.test", "password": "long enough"}
    )
    assert response.status_code == 401


async def test_member_session_ends_when_deactivated(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub)
    member = await make_user(running_hub, acme["id"], "m@acme.test", "org_member")
    async with member:
        assert (await member.get("/api/v1/organizations")).status_code == 200
        users = (await running_hub.client.get(f"/api/v1/organizations/{acme['id']}/users")).json()["users"]
        await running_hub.client.patch(
            f"/api/v1/organizations/{acme['id']}/users/{users[0]['id']}", json={"is_active": False}
        )
        assert (await member.get("/api/v1/organizations")).status_code == 401


async def test_devices_and_their_tokens(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub)
    base = f"/api/v1/organizations/{acme['id']}/devices"
    created = await running_hub.client.post(base, json={"name": "boiler", "metadata": {"floor": 2}})
    assert created.status_code == 201
    device = created.json()
    assert device["metadata"] == {"floor": 2}
    assert device["enabled"] is True
    assert (await running_hub.client.get(base)).json()["count"] == 1

    first = await running_hub.client.post(f"{base}/{device['id']}/tokens", json={"name": "v1"})
    second = await running_hub.client.post(f"{base}/{device['id']}/tokens", json={"expires_in_days": 1})
    assert first.status_code == second.status_code == 201
    token, other_token = first.json()["token"], second.json()["token"]
    assert token.startswith("mqh_dev_")
    expires_at = datetime.fromisoformat(second.json()["expires_at"])
    assert timedelta(hours=23) < expires_at - datetime.now(UTC) <= timedelta(days=1)
    listed = (await running_hub.client.get(f"{base}/{device['id']}/tokens")).json()
    assert listed["count"] == 2
    assert token not in str(listed)
    assert all(entry["hint"].startswith("mqh_dev_") for entry in listed["tokens"])

    # The hub's own authenticator: it remembers accepted tokens, and the API's changes must reach it.
    authenticator = running_hub.hub.authenticator
    await authenticator.authenticate(info(device["id"], token))
    await authenticator.authenticate(info(device["id"], other_token))
    revoked = await running_hub.client.delete(f"{base}/{device['id']}/tokens/{first.json()['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = await running_hub.client.delete(f"{base}/{device['id']}/tokens/{first.json()['id']}")
    assert again.status_code == 409
    with pytest.raises(AuthenticationRefused):
        await authenticator.authenticate(info(device["id"], token))
    await authenticator.authenticate(info(device["id"], other_token))

    disabled = await running_hub.client.patch(f"{base}/{device['id']}", json={"enabled": False, "name": "old boiler"})
    assert disabled.json()["enabled"] is False
    assert disabled.json()["name"] == "old boiler"
    with pytest.raises(AuthenticationRefused):
        await authenticator.authenticate(info(device["id"], other_token))
    assert (await running_hub.client.delete(f"{base}/{device['id']}")).status_code == 204
    assert (await running_hub.client.get(f"{base}/{device['id']}")).status_code == 404
    assert (await running_hub.client.get(f"{base}/not-a-device")).status_code == 404


async def test_device_management_needs_an_org_admin_of_that_organization(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub)
    other = await make_org(running_hub, "Other")
    device = (await running_hub.client.post(f"/api/v1/organizations/{acme['id']}/devices", json={"name": "d"})).json()
    member = await make_user(running_hub, acme["id"], "m@acme.test", "org_member")
    foreign_admin = await make_user(running_hub, other["id"], "a@other.test", "org_admin")
    async with member, foreign_admin:
        assert (await member.get(f"/api/v1/organizations/{acme['id']}/devices")).status_code == 200
        assert (await member.post(f"/api/v1/organizations/{acme['id']}/devices", json={"name": "x"})).status_code == 403
        tokens = f"/api/v1/organizations/{acme['id']}/devices/{device['id']}/tokens"
        assert (await member.post(tokens, json={})).status_code == 403
        assert (await foreign_admin.get(f"/api/v1/organizations/{acme['id']}/devices")).status_code == 403
        # The device is invisible through the admin's own organization too.
        path = f"/api/v1/organizations/{other['id']}/devices/{device['id']}"
        assert (await foreign_admin.get(path)).status_code == 404
        assert (await foreign_admin.delete(path)).status_code == 404


async def test_mqtt_tokens_as_documented(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub, short_id="acme0001")
    base = f"/api/v1/organizations/{acme['id']}/mqtt-tokens"
    created = await running_hub.client.post(
        base, json={"name": "My Application Token", "description": "dashboard", "expires_in_days": 90}
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"success", "token_id", "token", "expires_at", "permissions", "message"}
    assert body["success"] is True
    assert body["token"].startswith("mqh_mqtt_acme0001_")
    assert len(body["token"].rsplit("_", 1)[1]) == 32
    assert body["permissions"] == {"subscribe": ["device/+/telemetry/#"], "publish": []}
    assert "will not be shown again" in body["message"]
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=89, hours=23) < expires_at - datetime.now(UTC) <= timedelta(days=90)

    listed = (await running_hub.client.get(base)).json()
    assert listed["success"] is True
    assert listed["count"] == 1
    assert body["token"] not in str(listed)
    details = (await running_hub.client.get(f"{base}/{body['token_id']}")).json()
    assert details["success"] is True
    assert details["status"] == "active"
    assert details["last_used_at"] is None
    assert details["token_hint"].startswith("mqh_mqtt_acme0001_")

    hub = running_hub.hub
    await hub.authenticator.authenticate(info(body["token"], body["token"]))
    await hub.authenticator.last_used.settle()
    details = (await running_hub.client.get(f"{base}/{body['token_id']}")).json()
    assert details["last_used_at"] is not None

    revoked = await running_hub.client.delete(f"{base}/{body['token_id']}")
    assert revoked.status_code == 200
    assert revoked.json()["success"] is True
    assert (await running_hub.client.get(f"{base}/{body['token_id']}")).json()["status"] == "revoked"

    missing = await running_hub.client.get(f"{base}/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert set(missing.json()) >= {"success", "error", "code"}
    assert missing.json()["success"] is False


async def test_mqtt_token_permissions_are_validated(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub)
    base = f"/api/v1/organizations/{acme['id']}/mqtt-tokens"
    custom = await running_hub.client.post(
        base,
        json={"name": "writer", "permissions": {"subscribe": ["devices/+/status"], "publish": ["devices/+/commands"]}},
    )
    assert custom.status_code == 201
    assert custom.json()["permissions"] == {"subscribe": ["devices/+/status"], "publish": ["devices/+/commands"]}
    for permissions in ({"subscribe": ["a/#/b"]}, {"publish": ["$SYS/#"]}, {"subscribe": ["x+"]}):
        refused = await running_hub.client.post(base, json={"name": "bad", "permissions": permissions})
        assert refused.status_code == 422, permissions
        assert refused.json()["success"] is False
    for bad in ({"name": ""}, {"name": "x", "expires_in_days": 0}, {}):
        assert (await running_hub.client.post(base, json=bad)).status_code == 422
    member = await make_user(running_hub, acme["id"], "m@acme.test", "org_member")
    async with member:
        assert (await member.post(base, json={"name": "mine"})).status_code == 403
        assert (await member.get(base)).status_code == 403


async def test_certificates_issue_download_once_and_revoke(running_hub: LocalHub) -> None:
    acme = await make_org(running_hub)
    device = (await running_hub.client.post(f"/api/v1/organizations/{acme['id']}/devices", json={"name": "d"})).json()
    issued = await running_hub.client.post(f"/api/v1/organizations/{acme['id']}/devices/{device['id']}/certificate")
    assert issued.status_code == 201
    data = issued.json()["data"]
    assert set(data) == {"p12Url", "p12Password", "clientId", "subTopics"}
    assert data["clientId"] == device["id"]
    assert data["subTopics"] == [f"devices/{device['id']}/commands", f"organizations/{acme['id']}/broadcast"]
    async with httpx.AsyncClient() as anonymous:
        download = await anonymous.get(data["p12Url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/x-pkcs12"
        key, certificate, _ = pkcs12.load_key_and_certificates(download.content, data["p12Password"].encode())
        assert key is not None
        assert certificate is not None
        assert format(certificate.serial_number, "x") == issued.json()["serial"]
        assert (await anonymous.get(data["p12Url"])).status_code == 404
    listed = (await running_hub.client.get(f"/api/v1/organizations/{acme['id']}/certificates")).json()
    assert listed["certificates"][0]["downloaded"] is True

    mine = await running_hub.client.post("/api/v1/auth/mqtt-certificate")
    assert mine.status_code == 201
    assert mine.json()["data"]["clientId"].startswith("user-")
    assert "device/+/telemetry/#" in mine.json()["data"]["subTopics"]

    serial = issued.json()["serial"]
    hub = running_hub.hub
    certificate_info = ConnectInfo(
        client_id=device["id"],
        username=None,
        password=None,
        protocol_level=4,
        listener="tls",
        peer="x:1",
        certificate_cn=device["id"],
        certificate_serial=int(serial, 16),
    )
    authenticator = DatabaseAuthenticator(hub.database, hub.secrets, hub.settings)
    principal = await authenticator.authenticate(certificate_info)
    assert principal.id == f"cert:{serial}"
    assert principal.attributes["device_id"] == device["id"]
    revoked = await running_hub.client.delete(f"/api/v1/organizations/{acme['id']}/certificates/{serial}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    with pytest.raises(AuthenticationRefused):
        await authenticator.authenticate(certificate_info)
    missing = await running_hub.client.delete(f"/api/v1/organizations/{acme['id']}/certificates/abc")
    assert missing.status_code == 404
