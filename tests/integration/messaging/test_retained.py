"""Retained messages over the API: listed by filter and page inside the organization only, and cleared."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.integration.messaging.conftest import threaded_hub
from tests.support.access import new_org


def test_retained_messages_are_listed_paged_and_cleared(tmp_path: Path) -> None:
    with threaded_hub(tmp_path) as hub:
        boss = hub.call(new_org(hub.admin, "Retainers"))
        other = hub.call(new_org(hub.admin, "Others"))
        api = boss.http()
        for topic, payload in (("sensors/b/temp", '{"c": 21}'), ("sensors/a/temp", "20.5"), ("sensors/a/hum", "40")):
            body = {"topic": topic, "payload": payload, "qos": 1, "retain": True}
            assert api.post("/publish", json=body).status_code == 200
        binary = {"topic": "blobs/x", "payload": base64.b64encode(b"\xff\x00").decode(), "payload_encoding": "base64"}
        assert api.post("/publish", json=binary | {"retain": True}).status_code == 200
        assert api.post("/publish", json={"topic": "not/kept", "payload": "x"}).status_code == 200
        url = f"/api/v1/organizations/{boss.org_id}/retained"

        temps = api.get(url, params={"filter": "sensors/+/temp"}).json()
        assert [each["topic"] for each in temps["messages"]] == ["sensors/a/temp", "sensors/b/temp"]
        assert temps["messages"][1] | {"timestamp": None} == {
            "topic": "sensors/b/temp",
            "payload": '{"c": 21}',
            "payload_encoding": "utf-8",
            "payload_size": 9,
            "qos": 1,
            "timestamp": None,
        }
        page = api.get(url, params={"limit": 2, "offset": 1}).json()
        assert (page["count"], page["offset"], page["limit"]) == (4, 1, 2)
        assert [each["topic"] for each in page["messages"]] == ["sensors/a/hum", "sensors/a/temp"]
        blob = api.get(url, params={"filter": "blobs/#"}).json()["messages"][0]
        assert (blob["payload_encoding"], base64.b64decode(blob["payload"])) == ("base64", b"\xff\x00")

        # Another organization sees none of them, and may not look.
        elsewhere = other.http()
        assert elsewhere.get(f"/api/v1/organizations/{other.org_id}/retained").json()["count"] == 0
        assert elsewhere.get(url).status_code == 403
        assert elsewhere.delete(f"{url}/sensors/a/temp").status_code == 403

        assert api.get(url, params={"filter": "a/#/b"}).status_code == 422
        assert api.get(url, params={"filter": "$SYS/#"}).status_code == 422
        assert api.get(url, params={"limit": 201}).status_code == 422
        assert api.delete(f"{url}/sensors/+/temp").status_code == 422
        assert api.delete(f"{url}/sensors/a/temp").status_code == 204
        assert api.delete(f"{url}/sensors/a/temp").status_code == 404
        left = api.get(url, params={"filter": "sensors/#"}).json()
        assert [each["topic"] for each in left["messages"]] == ["sensors/a/hum", "sensors/b/temp"]
