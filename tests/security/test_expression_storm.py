"""Payloads that make templates and conditions expensive must neither stall the hub nor go unnoticed.

A real hub process takes messages from a real Mosquitto; its event subscriptions use the
templates of the attack (``event.a ** event.b`` with a payload exponent, ``'x' * 10**8``) and a
condition made slow by its payload. While they are published, a probe polls ``/health`` every
50 ms. Each attacked action fails with a clear reason in the product's failure log and its
subscription's counters, a harmless action next to them still runs, and the probe's worst
latency stays under 200 ms, because conditions and templates are evaluated in bounded worker
processes under a time budget, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mqtthub.integrations.conditions import Condition
from tests.integration.integrations.conftest import mosquitto, pki  # noqa: F401 (fixtures)
from tests.integration.integrations.mosquitto import PASSWORD, USERNAME, Mosquitto
from tests.integration.integrations.servers import http_recorder
from tests.support.hubproc import serve_process

# Measures the hub's latency: run alone, after the parallel suite (a neighbour test would be measured too).
pytestmark = pytest.mark.alone

TOPIC = "/v3/applications/ABC123/business-events"
PROBE_INTERVAL = 0.05
SLOW_CONDITION = " or ".join(["a == b"] * 100)  # each comparison walks two long lists of objects


def slow_payload() -> dict[str, Any]:
    """Lists that differ only at their end: tens of milliseconds of comparisons for the condition above."""
    items = [{"k": i} for i in range(20_000)]
    return {"event": "slow", "a": items, "b": [*items[:-1], {"k": -1}]}


def expression_budget() -> str:
    """The hub's time budget: a quarter of what the slow condition takes here, so it fails on any machine."""
    document = json.loads(json.dumps(slow_payload()))
    started = time.perf_counter()
    assert Condition(SLOW_CONDITION).evaluate(document) is False
    took = time.perf_counter() - started
    return f"{max(0.005, min(0.1, took / 4)):.3f}"


async def probe(http: httpx.AsyncClient, done: asyncio.Event) -> list[float]:
    latencies = []
    while not done.is_set():
        started = time.monotonic()
        response = await http.get("/health")
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200
        await asyncio.sleep(PROBE_INTERVAL)
    return latencies


async def publish_lines(broker: Mosquitto, payloads: list[bytes]) -> None:
    """Publish one message per line with mosquitto_pub: another process, so the probe shares no GIL with it."""
    command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.tcp_port), "-u", USERNAME, "-P", PASSWORD]
    process = await asyncio.create_subprocess_exec(
        *command, "-q", "1", "-t", TOPIC, "-l", stdin=asyncio.subprocess.PIPE
    )
    await process.communicate(b"\n".join(payloads) + b"\n")
    assert process.returncode == 0


async def wait_for(check: Any, what: str, seen: object = None, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what} (seen: {seen})"
        await asyncio.sleep(0.1)
    return result


async def test_expensive_templates_and_conditions_fail_their_action_and_never_stall_the_hub(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811 (the fixture)
) -> None:
    budget = expression_budget()
    async with http_recorder() as hooks:
        hook = f"http://127.0.0.1:{hooks.port}/hook"
        with serve_process(
            tmp_path,
            integration_expression_timeout=budget,
            integration_reconnect_min=0.1,
            log_level="warning",
            outbound_allow="127.0.0.1",
        ) as hub:
            async with hub.admin.async_http() as http:
                organization = await http.post("/api/v1/organizations", json={"name": "Acme", "short_id": "acme0001"})
                assert organization.status_code == 201, organization.text
                product = await http.post(
                    "/api/v1/products", json={"name": "tyres", "organization_id": organization.json()["id"]}
                )
                base = f"/api/v1/products/{product.json()['id']}/mqtt-config"
                broker = {"host": "127.0.0.1", "port": mosquitto.tcp_port, "username": USERNAME, "password": PASSWORD}
                saved = await http.put(base, json={"broker": broker, "topics": {"use_shared": False}})
                assert saved.status_code == 200, saved.text
                webhooks: dict[str, dict[str, Any]] = {
                    "pow": {"body": {"big": "{{ (event.a ** event.b) > 1 }}"}},
                    "repeat": {"body": {"n": "{{ ('x'*10**8)|length }}"}},
                    "slow": {"condition": SLOW_CONDITION},
                    "fine": {"body": {"n": "{{ event.n * 2 }}"}},
                }
                ids = {}
                for name, extra in webhooks.items():
                    action = {"type": "webhook", "url": hook, "retries": 0, **extra}
                    body = {"name": name, "variables": {"application_id": "ABC123"}, "actions": [action]}
                    created = await http.post(f"{base}/subscriptions", json=body)
                    assert created.status_code == 201, created.text
                    ids[name] = created.json()["subscription"]["id"]

                async def subscribed() -> bool:
                    return bool((await http.get(f"{base}/status")).json()["subscribed_topics_count"] == 1)

                await wait_for(subscribed, "the connector's subscription")
                messages = [{"event": "pow", "a": 9, "b": 4782969}, {"event": "repeat"}, slow_payload()]
                payloads = [json.dumps(message).encode() for message in messages * 2]
                done = asyncio.Event()
                probing = asyncio.create_task(probe(http, done))
                await publish_lines(mosquitto, [*payloads, b'{"event": "fine", "n": 21}'])

                seen: list[Any] = []

                async def failures() -> list[dict[str, Any]] | None:
                    logged = (await http.get(f"{base}/failures")).json()["failures"]
                    seen[:] = [[row["error"] for row in logged], hooks.requests, hub.stderr[-20:]]
                    return logged if len(logged) == 6 and hooks.requests else None

                logged = await wait_for(failures, "six failed actions and one webhook call", seen)
                await asyncio.sleep(0.5)  # the probe keeps going after the last evaluation
                done.set()
                latencies = await probing
                subscriptions = {
                    row["name"]: row for row in (await http.get(f"{base}/subscriptions")).json()["subscriptions"]
                }

    reasons = {name: [row["error"] for row in logged if row["subscription_id"] == ids[name]] for name in ids}
    assert all("would exceed the integer limit of 4096 bits" in reason for reason in reasons["pow"]), reasons
    assert all("would exceed the length limit" in reason for reason in reasons["repeat"]), reasons
    stopped = f"took longer than {float(budget):g} s and was stopped"
    assert all(stopped in reason for reason in reasons["slow"]), reasons
    assert [len(reasons[name]) for name in ("pow", "repeat", "slow", "fine")] == [2, 2, 2, 0]
    assert all(reason.startswith("condition or template failed: ") for row in logged for reason in [row["error"]])
    assert [request.json() for request in hooks.requests] == [{"n": 42}]
    assert {name: row["stats"]["actions_failed"] for name, row in subscriptions.items()} == {
        "pow": 2,
        "repeat": 2,
        "slow": 2,
        "fine": 0,
    }
    assert len(latencies) >= 10
    assert max(latencies) < 0.2, f"worst /health latency {max(latencies):.3f} s"
