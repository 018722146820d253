"""Authentication, organization scoping, permissions, and the 401/403/404/422/429/503 answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mqtthub.client import HubClient
from tests.integration.messaging.conftest import threaded_hub
from tests.support.access import api_token, new_org
from tests.support.served import ThreadedHub


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert body["detail"] == body["error"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/publish", {"topic": "a", "payload": "x"}),
        ("POST", "/subscribe", {"topic": "a/#"}),
        ("DELETE", "/subscribe/a", None),
        ("GET", "/messages", None),
        ("GET", "/topics", None),
        ("GET", "/stats", None),
    ],
)
def test_every_endpoint_needs_credentials(shared_hub: ThreadedHub, method: str, path: str, body: object) -> None:
    response = shared_hub.http().request(method, path, json=body)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "mqh_not_a_real_token"},
        {"Authorization": "Bearer mqh_not_a_real_token"},
        {"Authorization": "Bearer aaa.bbb.ccc"},
    ],
    ids=["api-key", "bearer-token", "bearer-jwt"],
)
def test_invalid_credentials_are_refused(shared_hub: ThreadedHub, headers: dict[str, str]) -> None:
    assert_error(httpx.get(shared_hub.http_url + "/stats", headers=headers), 401, "unauthorized")


def test_api_key_and_bearer_token_both_accept_an_mqtt_api_token(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    assert shared_hub.http(api_key=token).get("/stats").status_code == 200
    assert shared_hub.http(token=token).get("/stats").status_code == 200


def test_revoked_token_is_refused(shared_hub: ThreadedHub) -> None:
    org = shared_hub.admin
    with shared_hub.http(org.token) as admin:
        created = admin.post(f"/api/v1/organizations/{org.org_id}/mqtt-tokens", json={"name": "short-lived"}).json()
        assert shared_hub.http(api_key=created["token"]).get("/topics").status_code == 200
        assert admin.delete(f"/api/v1/organizations/{org.org_id}/mqtt-tokens/{created['token_id']}").status_code == 200
    assert_error(shared_hub.http(api_key=created["token"]).get("/topics"), 401, "unauthorized")


def test_subscribe_only_token_cannot_publish(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin, subscribe=["device/+/telemetry/#"], publish=[]))
    with shared_hub.http(api_key=token) as app:
        assert_error(app.post("/publish", json={"topic": "device/d1/commands", "payload": "x"}), 403, "forbidden")
        assert app.post("/subscribe", json={"topic": "device/d7/telemetry/#"}).status_code == 200
        assert_error(app.post("/subscribe", json={"topic": "device/#"}), 403, "forbidden")
        assert_error(app.post("/subscribe", json={"topic": "#"}), 403, "forbidden")
        assert_error(app.get("/messages", params={"topic": "secrets/#"}), 403, "forbidden")


def test_token_filters_bound_what_it_reads(shared_hub: ThreadedHub) -> None:
    org = shared_hub.admin
    with shared_hub.http(org.token) as admin:
        admin.post("/subscribe", json={"topic": "bounded/#"})
        admin.post("/publish", json={"topic": "bounded/public/1", "payload": "p"})
        admin.post("/publish", json={"topic": "bounded/private/1", "payload": "s"})
    reader = shared_hub.call(api_token(org, subscribe=["bounded/public/#"], publish=["bounded/public/#"]))
    with shared_hub.http(api_key=reader) as app:
        topics = [m["topic"] for m in app.get("/messages").json()["messages"]]
        assert "bounded/public/1" in topics
        assert all(topic.startswith("bounded/public/") for topic in topics)
        assert all(t["topic"].startswith("bounded/public/") for t in app.get("/topics").json()["topics"])
        assert set(app.get("/stats").json()["topic_counts"]) == {"bounded/public/1"}
        assert app.post("/publish", json={"topic": "bounded/public/2", "payload": "ok"}).status_code == 200
        assert_error(app.post("/publish", json={"topic": "bounded/private/2", "payload": "no"}), 403, "forbidden")


def test_organizations_see_only_their_own_namespace(shared_hub: ThreadedHub) -> None:
    first = shared_hub.admin
    second = shared_hub.call(new_org(shared_hub.admin, "Second Org"))
    with shared_hub.http(first.token) as a, shared_hub.http(second.token) as b:
        assert a.post("/subscribe", json={"topic": "shared/name/#"}).status_code == 200
        assert b.post("/subscribe", json={"topic": "#"}).status_code == 200
        assert a.post("/publish", json={"topic": "shared/name/x", "payload": "from-a"}).status_code == 200
        assert b.post("/publish", json={"topic": "shared/name/x", "payload": "from-b"}).status_code == 200
        a_payloads = [m["payload"] for m in a.get("/messages", params={"topic": "shared/name/#"}).json()["messages"]]
        b_messages = b.get("/messages").json()["messages"]
        assert a_payloads == ["from-a"]
        assert [m["payload"] for m in b_messages] == ["from-b"]
        assert b_messages[0]["topic"] == "shared/name/x"  # no namespace prefix is ever shown
        assert b.get("/topics").json()["subscriptions"] == ["#"]
        assert "shared/name/#" not in b.get("/topics").json()["subscriptions"]
        assert list(b.get("/stats").json()["topic_counts"]) == ["shared/name/x"]
        # B cannot reach A's namespace by naming it: the prefix is applied to whatever it sends.
        assert b.post("/publish", json={"topic": f"org/{first.short_id}/shared/name/x", "payload": "x"}).json()[
            "success"
        ]
        assert [m["payload"] for m in a.get("/messages", params={"topic": "shared/name/#"}).json()["messages"]] == [
            "from-a"
        ]
        assert_error(b.delete("/subscribe/shared%2Fname%2F%23"), 404, "not_found")


def test_unsubscribe_takes_url_encoded_wildcards(shared_hub: ThreadedHub) -> None:
    with shared_hub.http(shared_hub.admin.token) as client:
        assert client.post("/subscribe", json={"topic": "plant/+/line/#"}).status_code == 200
        assert "plant/+/line/#" in client.get("/topics").json()["subscriptions"]
        response = client.delete("/subscribe/plant%2F%2B%2Fline%2F%23")
        assert response.status_code == 200, response.text
        assert response.json()["topic"] == "plant/+/line/#"
        assert "plant/+/line/#" not in client.get("/topics").json()["subscriptions"]
        assert_error(client.delete("/subscribe/plant%2F%2B%2Fline%2F%23"), 404, "not_found")
        client.post("/subscribe", json={"topic": "plain/topic"})
        assert client.delete("/subscribe/plain/topic").status_code == 200  # unencoded slashes work too


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/publish", {"payload": "no topic"}),
        ("POST", "/publish", {"topic": "a/+", "payload": "x"}),
        ("POST", "/publish", {"topic": "a", "qos": 3}),
        ("POST", "/publish", {"topic": "$SYS/x"}),
        ("POST", "/publish", {"topic": "a", "payload": "%%%", "payload_encoding": "base64"}),
        ("POST", "/subscribe", {"topic": "a/#/b"}),
        ("POST", "/subscribe", {"topic": "a", "qos": -1}),
        ("POST", "/subscribe", {"topic": "a", "unknown": 1}),
        ("DELETE", "/subscribe/a%2F%23%2Fb", None),
        ("GET", "/messages?limit=0", None),
        ("GET", "/messages?limit=100000", None),
        ("GET", "/messages?topic=a%2F%23%2Fb", None),
        ("GET", "/messages?since=yesterday", None),
    ],
)
def test_invalid_input_gets_fastapis_422_shape(shared_hub: ThreadedHub, method: str, path: str, body: object) -> None:
    response = shared_hub.http(shared_hub.admin.token).request(method, path, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert {"loc", "msg", "type"} <= set(detail[0])


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, api_rate_limit=0.5, api_rate_burst=3) as hub:
        first = hub.call(api_token(hub.admin))
        second = hub.call(api_token(hub.admin))
        with hub.http(api_key=first) as client:
            statuses = [client.get("/topics").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            limited = client.get("/stats")
            assert_error(limited, 429, "rate_limited")
            assert int(limited.headers["retry-after"]) >= 1
        assert hub.http(api_key=second).get("/topics").status_code == 200  # buckets are per caller


def test_broker_down_gives_503(tmp_path: Path) -> None:
    with threaded_hub(tmp_path) as hub:
        with hub.http(hub.admin.token) as client:
            assert client.post("/subscribe", json={"topic": "x/#"}).status_code == 200
            hub.run(hub.hub._broker.close())  # type: ignore[union-attr]
            assert_error(client.post("/publish", json={"topic": "x/1", "payload": "1"}), 503, "unavailable")
            assert_error(client.post("/subscribe", json={"topic": "y/#"}), 503, "unavailable")
            assert client.get("/stats").json()["mqtt_connected"] is False
        health = hub.http().get("/health")
        assert health.status_code == 503
        assert health.json()["mqtt_connected"] is False
        assert health.json()["status"] == "degraded"
        with HubClient(hub.http_url) as sdk:
            report = sdk.health_check()  # a degraded report is still a report
        assert (report.status, report.mqtt_connected) == ("degraded", False)


def test_cors_origins_come_from_settings(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, cors_origins="https://app.example, https://ops.example") as hub:
        preflight = hub.http().options(
            "/publish",
            headers={
                "Origin": "https://ops.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://ops.example"
        refused = hub.http().options(
            "/publish", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in refused.headers


def test_openapi_documents_every_endpoint_with_models_and_errors(shared_hub: ThreadedHub) -> None:
    schema = shared_hub.http().get("/openapi.json").json()
    expected = {
        ("/publish", "post"): {"401", "403", "422", "429", "503"},
        ("/subscribe", "post"): {"401", "403", "422", "429", "503"},
        ("/subscribe/{topic}", "delete"): {"401", "403", "404", "422", "429"},
        ("/messages", "get"): {"401", "403", "422", "429"},
        ("/topics", "get"): {"401", "403", "429"},
        ("/stats", "get"): {"401", "403", "429"},
    }
    for (path, method), errors in expected.items():
        operation = schema["paths"][path][method]
        assert errors <= set(operation["responses"]), (path, sorted(operation["responses"]))
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, path
    health = schema["paths"]["/health"]["get"]["responses"]
    assert health["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/HealthReport")
    report = schema["components"]["schemas"]["HealthReport"]["properties"]
    assert {"mqtt_connected", "message_count", "active_subscriptions", "websocket_connections"} <= set(report)
    security = schema["components"]["securitySchemes"]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(security)
