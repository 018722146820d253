"""The whole HTTP API against its own OpenAPI document, fuzzed by schemathesis on a real hub process.

Every operation is exercised with generated valid and invalid input (the stateless
``examples``, ``coverage`` and ``fuzzing`` phases), and sequences of calls follow the links
schemathesis infers between operations (the ``stateful`` phase: an id a POST returns is used by
the GET, PATCH and DELETE of that resource). It runs once with a platform administrator's
session token and once without credentials. The run fails on any 5xx answer, any status the OpenAPI document
does not list for the operation, and any body that does not match the documented schema.
The seed is fixed and the examples per operation bounded, so the two runs take about three minutes together.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.hubproc import HubProcess, run_hub

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "correct horse battery"
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
MAX_EXAMPLES = {"admin": 15, "anonymous": 5}
"""Examples per operation and phase: without credentials nearly every answer is the same 401."""
SEED = 20261127


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    workdir = tmp_path_factory.mktemp("schemathesis-hub")
    env = {"MQTTHUB_ADMIN_EMAIL": ADMIN_EMAIL, "MQTTHUB_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with run_hub(workdir, env=env) as running:
        yield running


def _admin_token(hub: HubProcess) -> str:
    response = httpx.post(
        hub.http_url + "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.mark.timeout(600)
@pytest.mark.parametrize("caller", ["admin", "anonymous"])
def test_every_answer_matches_the_openapi_document(hub: HubProcess, caller: str, tmp_path: Path) -> None:
    headers = ["-H", f"Authorization: Bearer {_admin_token(hub)}"] if caller == "admin" else []
    config = tmp_path / "schemathesis.toml"
    # Without credentials schemathesis would try to sign up through the API on its own: the
    # anonymous run is meant to see what a caller without credentials gets.
    config.write_text("[auth]\nauto-signup = false\n")
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
        "junit",
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
