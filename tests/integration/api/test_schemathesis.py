"""The whole HTTP API against its own OpenAPI document, fuzzed by schemathesis on a real hub process.

Every operation is exercised with generated valid and invalid input (the stateless
``examples``, ``coverage`` and ``fuzzing`` phases), and sequences of calls follow the links
schemathesis infers between operations (the ``stateful`` phase: an id a POST returns is used by
the GET, PATCH and DELETE of that resource). It runs once with a platform administrator's
session token and once without credentials. The run fails on any 5xx answer, any status the OpenAPI document
does not list for the operation, and any body that does not match the documented schema.

So that success bodies are checked too, not only errors, the administrator's run works on seeded data: an
organization, a device with readings, an alert, a status and a command, and a product with its MQTT
configuration, a subscription and a template. Reading operations name those (fixed path parameters), and
the device's own operations (datastream, status, sensor readings, command replies) use the device's token.
The seed is fixed and the examples per operation bounded, so the two runs take about three minutes together.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.hubproc import HubProcess, serve_process

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
MAX_EXAMPLES = {"admin": 15, "anonymous": 5}
"""Examples per operation and phase: without credentials nearly every answer is the same 401."""
SEED = 20261127


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    workdir = tmp_path_factory.mktemp("schemathesis-hub")
    with serve_process(workdir) as running:
        yield running


def _created(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


@dataclass(frozen=True)
class Seeded:
    """What the administrator's run reads: an organization, one of its devices (and its token), a product."""

    org: str
    device: str
    device_token: str
    product: str

    def reads(self) -> set[str]:
        """The paths of reading operations that answer from the seeded data (each must answer 200 at least once)."""
        device, product = f"/api/v1/devices/{self.device}", f"/api/v1/products/{self.product}"
        return {
            f"{device}/status",
            f"{device}/datastreams",
            f"{device}/telemetry-definitions",
            f"{device}/alerts",
            f"{device}/commands",
            f"/api/v1/organizations/{self.org}/alerts",
            f"/api/v1/organizations/{self.org}/rejected-messages",
            product,
            f"{product}/mqtt-config",
            f"{product}/mqtt-config/status",
            f"{product}/mqtt-config/subscriptions",
            f"{product}/mqtt-config/failures",
            f"{product}/email-templates",
        }

    def operations(self) -> str:
        """Schemathesis settings: reading operations name the seeded objects; device operations use its token."""
        # Operations are selected by name ("METHOD /path"), one pattern each, so that no two selections overlap.
        return f"""
[[operations]]
include-name-regex = "^POST /api/v1/devices/\\\\{{device_id\\\\}}/(datastream|status|telemetry/.+|commands/reply)$"
headers = {{ Authorization = "Bearer {self.device_token}" }}
parameters = {{ device_id = "{self.device}" }}

[[operations]]
include-name-regex = "^GET /api/v1/devices/\\\\{{device_id\\\\}}"
parameters = {{ device_id = "{self.device}" }}

[[operations]]
include-name-regex = "^GET /api/v1/organizations/\\\\{{org_id\\\\}}/(alerts|rejected-messages)$"
parameters = {{ org_id = "{self.org}" }}

[[operations]]
include-name-regex = "^GET /api/v1/products/\\\\{{product_id\\\\}}"
parameters = {{ product_id = "{self.product}" }}
"""


def _seed(hub: HubProcess, admin_token: str) -> Seeded:
    """Readings, an alert, a status and a command of a device; a product with configuration, subscription, template."""
    with httpx.Client(base_url=hub.http_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as admin:
        org = _created(admin.post("/api/v1/organizations", json={"name": "Seeded", "short_id": "seeded01"}))["id"]
        device = _created(admin.post(f"/api/v1/organizations/{org}/devices", json={"name": "sensor"}))["id"]
        token = _created(admin.post(f"/api/v1/organizations/{org}/devices/{device}/tokens", json={}))["token"]
        definition = {"key": "temperature", "unit": "C", "maxThreshold": 30}
        data_id = _created(admin.post(f"/api/v1/devices/{device}/telemetry-definitions", json=definition))["data"]["id"]
        as_device = {"Authorization": f"Bearer {token}"}
        reading = {"telemetryDataId": data_id, "value": 35}  # above the threshold: an alert too
        _created(admin.post(f"/api/v1/devices/{device}/datastream", json=reading, headers=as_device))
        _created(admin.post(f"/api/v1/devices/{device}/telemetry/humidity", json=55, headers=as_device))
        _created(admin.post(f"/api/v1/devices/{device}/status", json={"status": "online"}, headers=as_device))
        _created(admin.post(f"/api/v1/devices/{device}/commands", json={"command": "reboot"}))
        product = _created(admin.post("/api/v1/products", json={"name": "Seeded", "organization_id": org}))["id"]
        broker = {"broker": {"host": "broker.example.com", "port": 1883}}
        _created(admin.put(f"/api/v1/products/{product}/mqtt-config", json=broker))
        _created(admin.post(f"/api/v1/products/{product}/mqtt-config/subscriptions", json={"name": "payment"}))
        template = {"subject": "Hello", "body": "Event {{event.name}}", "recipients": ["ops@example.com"]}
        _created(admin.put(f"/api/v1/products/{product}/email-templates/welcome", json=template))
    return Seeded(org=org, device=device, device_token=token, product=product)


def _answered_ok(report_dir: Path) -> set[str]:
    """The paths of GET requests in schemathesis' HAR report that were answered 200 (their bodies were checked)."""
    paths: set[str] = set()
    for report in report_dir.glob("har-*.json"):
        for entry in json.loads(report.read_text())["log"]["entries"]:
            if entry["request"]["method"] == "GET" and entry["response"]["status"] == 200:
                paths.add(urlsplit(entry["request"]["url"]).path)
    return paths


@pytest.mark.timeout(600)
@pytest.mark.parametrize("caller", ["admin", "anonymous"])
def test_every_answer_matches_the_openapi_document(hub: HubProcess, caller: str, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    # Without credentials schemathesis would try to sign up through the API on its own: the
    # anonymous run is meant to see what a caller without credentials gets.
    settings = "[auth]\nauto-signup = false\n"
    headers: list[str] = []
    seeded: Seeded | None = None
    if caller == "admin":
        token = hub.admin.token
        headers = ["-H", f"Authorization: Bearer {token}"]
        seeded = _seed(hub, token)
        settings += seeded.operations()
    config.write_text(settings)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        hub.http_url + "/openapi.json",
        *headers,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES[caller]),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--continue-on-failure",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit,har",
        "--report-dir",
        str(tmp_path),
    ]
    # In tmp_path, schemathesis keeps its cache of crashes out of the source tree.
    run = subprocess.run(command, capture_output=True, text=True, timeout=540, check=False, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected is not None, output[-5000:]
    assert tested is not None, output[-5000:]
    assert int(selected[1]) == int(selected[2]) == int(tested[1]), "every operation is tested"
    assert "Traceback" not in "\n".join(hub.stderr), "\n".join(hub.stderr)[-5000:]
    if seeded is not None:
        unchecked = seeded.reads() - _answered_ok(tmp_path)
        assert not unchecked, f"reading operations whose success body was never checked: {sorted(unchecked)}"
