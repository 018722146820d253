"""The README runs: every shell, console and Python block, in order, against a served hub.

One ``mqtthub serve`` process (as the quick start starts it, in its own directory) serves the whole walk; the
README's ``broker.example.com`` is a local Mosquitto whose server certificate the hub's CA issued, and the
certificates the README's clients use come from the hub. Placeholders the README shows (``…`` passwords,
``mqh_...`` tokens, ``localhost:8000``, ``<product id>``) are filled with what the earlier steps produced.

Each runnable block needs an entry in :data:`RUNNERS` (a new snippet without one fails
``test_every_block_has_a_runner``); the only blocks not run are the ones exempted there with the reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mqtthub.auth.ca import CA_CERT_NAME, CA_KEY_NAME, CertificateAuthority
from tests.conftest import require
from tests.integration.integrations.mosquitto import Certificates, mosquitto_available
from tests.integration.readme.external import ExampleBroker
from tests.integration.readme.installed import modules_outside
from tests.integration.readme.test_quickstart import QUICK_START
from tests.integration.readme.walk import Bounded, Runner, Walk
from tests.support.hubproc import HubProcess, serve_process
from tests.support.readme import README, RUNNABLE, Block, code_blocks, runnable_blocks

pytestmark = [pytest.mark.xdist_group("readme"), pytest.mark.timeout(300)]

# The extras the README tells a reader to install for its Python examples ("Python SDK"); the Python blocks run
# with every other installed package hidden.
DOCUMENTED_EXTRAS = ("client",)
# Placeholders every block may use.
EVERYWHERE = (
    ("127.0.0.1:8000", "{http}"),
    ("localhost:8000", "{http}"),
    ('"password": "…"', '"password": "{admin_password}"'),
)


@dataclass
class ReadmeWalk(Walk):
    """The walk with what the README's examples reach: the hub and ``broker.example.com``."""

    hub: HubProcess | None = None
    broker: ExampleBroker | None = None

    def example_broker(self) -> ExampleBroker:
        """The Mosquitto standing in for ``broker.example.com``."""
        assert self.broker is not None
        return self.broker


def _issue_client_p12(walk: Walk) -> None:
    """``client.p12`` as the README's CLI makes it, from the hub's CA; its password becomes the ``…``."""
    completed = subprocess.run(
        ["mqtthub", "cert", "issue", "--user", "admin@mqtthub.local", "--out", "client.p12"],
        cwd=walk.workdir,
        env=walk.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    match = re.search(r"PKCS#12 password \(shown only now\): (\S+)", completed.stdout + completed.stderr)
    assert match, completed.stdout + completed.stderr
    walk.values["p12_password"] = match[1]


def _publish_factory_reading(walk: Walk) -> None:
    response = httpx.post(
        f"http://{walk.values['http']}/publish",
        headers={"X-API-Key": walk.carried["TOKEN"]},
        json={"topic": "factory/line3/press3/temperature", "payload": "45.3", "qos": 1},
        timeout=10,
    )
    response.raise_for_status()


def _feed(topic: str, payload: object, count: int = 1) -> Callable[[Walk], None]:
    def feed(walk: Walk) -> None:
        assert isinstance(walk, ReadmeWalk)
        walk.example_broker().publish(topic, json.dumps(payload).encode(), count=count)

    return feed


PAYMENT = {
    "event": "payment_marked_as_pending",
    "customer": "Ana",
    "email": "ana@example.com",
    "payment": {"id": "P2", "status": "pending", "amount": 12.5},
}

PAHO_AFTER = """
import threading as _threading

_granted = []
_subscribed = _threading.Event()
client.on_subscribe = lambda client, userdata, mid, codes, properties: (
    _granted.extend(code.value for code in codes), _subscribed.set())
client.loop_start()
_subscribed.wait(20)
client.disconnect()
client.loop_stop()
assert _granted == [1], f"SUBACK granted {_granted}"
"""

SDK_AFTER = """
import asyncio as _asyncio

_following = _asyncio.ensure_future(follow())
with HubClient("http://{http}", api_key=token) as _hub:
    for _ in range(40):
        _hub.publish("factory/line2/press2/temperature", "47.5", qos=1)
        try:
            await wait_for_output("factory/line2/press2/temperature 47.5", timeout=0.5)
            break
        except TimeoutError:
            pass
_following.cancel()
await wait_for_output("factory/line2/press2/temperature 47.5", timeout=1)
"""

LISTENER_AFTER = """
import paho.mqtt.client as _paho

_feeder = _paho.Client(_paho.CallbackAPIVersion.VERSION2)
_feeder.username_pw_set("bre-tyres", "secure-password-123")
_feeder.connect("127.0.0.1", {broker_tcp})
_feeder.loop_start()
for _ in range(40):
    _feeder.publish("app/user/42/sub", '"from the broker"', qos=1).wait_for_publish(10)
    try:
        await wait_for_output("app/user/42/sub", timeout=0.5)
        break
    except TimeoutError:
        pass
_feeder.disconnect()
_feeder.loop_stop()
listener.stop()
await wait_for_output("app/user/42/sub", timeout=1)
"""

SOCKETIO_AFTER = """
import httpx as _httpx

async with _httpx.AsyncClient() as _http:
    for _ in range(20):
        _answer = await _http.post(
            "http://{http}/api/v1/devices/{DEVICE_ID}/datastream",
            headers=dict(Authorization="Bearer {DEVICE_TOKEN}"),
            json=dict(value=21.75, telemetryDataId=int("{DATA_ID}")),
        )
        _answer.raise_for_status()
        try:
            await wait_for_output("21.75", timeout=1)
            break
        except TimeoutError:
            pass
await sio.disconnect()
await wait_for_output("21.75", timeout=1)
"""

RUNNERS = (
    Runner(QUICK_START, elsewhere="test_quickstart.py (a fresh install takes a minute: it runs beside this walk)"),
    Runner("scripts/test", exempt="runs the whole test suite, this test included"),
    Runner("MQTTHUB_HTTP_PORT=abc mqtthub serve"),
    Runner("/mqtt-tokens", sets=("JWT", "ORG_ID", "TOKEN"), expect=("mqh_mqtt_",)),
    Runner(
        "client.tls_set(",
        replace=(('"hub.example.com", 8085', '"localhost", {hub_wss}'), ('"mqh_mqtt_…"', '"{TOKEN}"')),
        after=PAHO_AFTER,
    ),
    Runner("/publish -H", expect=('"success":true', '"messages":[{"id"', '"topic":"factory/line1/press1/temperature"')),
    Runner("HubClient(", after=SDK_AFTER, expect=("factory/line1/press1/temperature 45.2",)),
    Runner(
        "mqtthub pub ",
        replace=(("mqh_...", "{TOKEN}"),),
        bounded=(
            Bounded(
                "mqtthub sub",
                ready="(Ctrl+C to stop)",
                feed=_publish_factory_reading,
                expect="factory/line3/press3/temperature",
            ),
        ),
        expect=("factory/line1/press1/temperature",),
    ),
    Runner(
        "mqtt-config/test",
        replace=(("broker.example.com", "localhost"), ('"port": 8883', '"port": {broker_tls}')),
        sets=("PRODUCT",),
        expect=('"connected":true',),
    ),
    Runner(
        "mqtthub listen mqtts://",
        before=_issue_client_p12,
        replace=(
            ("mqtts://broker.example.com:8883", "mqtts://localhost:{broker_mtls}"),
            ("--p12-password '…'", "--p12-password '{p12_password}'"),
            ("ws://127.0.0.1:8083/mqtt", "ws://127.0.0.1:{broker_ws}/mqtt"),
            ("<product id>", "$PRODUCT"),
        ),
        bounded=(
            Bounded(
                "--p12 client.p12",
                ready="subscribed to app/user/42/sub",
                feed=_feed("app/user/42/sub", {"hello": "certificate"}),
                expect='"hello": "certificate"',
            ),
            Bounded("--count 10", ready="subscribed to #", feed=_feed("counted", 7, count=10), exits=True),
            Bounded(
                "--product",
                ready="subscribed to",
                feed=_feed("/v3/applications/ABC123/business-events", PAYMENT),
                expect='"customer": "Ana"',
            ),
        ),
    ),
    Runner(
        "BrokerListener(",
        replace=(
            ('"mqtts://broker.example.com:8883"', '"mqtts://localhost:{broker_mtls}"'),
            ('pkcs12_password="…"', 'pkcs12_password="{p12_password}"'),
        ),
        after=LISTENER_AFTER,
    ),
    Runner("/datastream \\", sets=("DEVICE_ID", "DEVICE_TOKEN", "DATA_ID"), expect=('"value":25.6',)),
    Runner("socketio.AsyncClient()", after=SOCKETIO_AFTER),
)


def runner_of(block: Block) -> Runner:
    """The one runner whose anchor is in ``block``."""
    runners = [runner for runner in RUNNERS if runner.anchor in block.text]
    if len(runners) != 1:
        raise AssertionError(
            f"{block} has {len(runners)} runners: give it exactly one in RUNNERS "
            "(a new README snippet comes with a way to run it)"
        )
    return runners[0]


# Languages of blocks that are shown, not run: what a reader reads or writes into another program's file.
SHOWN_ONLY = {
    "json": "answers of the hub, shown for their shape",
    "text": "files the hub reads (operator rules), tested with the feature",
    "yaml": "configuration of other programs (Prometheus)",
    "conf": "configuration of external brokers (Mosquitto, EMQX, RabbitMQ), tested through their contracts",
}


def test_every_block_is_run_or_shown_only() -> None:
    """A block in another language (``sh``, none at all) would escape the walk: each names one it knows."""
    for block in code_blocks():
        assert block.lang in RUNNABLE or block.lang in SHOWN_ONLY, (
            f"{block}: give it a language that is run ({', '.join(RUNNABLE)}) or shown only ({', '.join(SHOWN_ONLY)})"
        )


def test_every_block_has_a_runner() -> None:
    """Each shell, console and Python block of the README is run (or exempted with a reason), each runner used."""
    blocks = runnable_blocks()
    for block in blocks:
        runner_of(block)
    for runner in RUNNERS:
        used = [block for block in blocks if runner.anchor in block.text]
        assert len(used) == 1, f"runner {runner.anchor!r} matches {len(used)} README blocks"


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmeWalk]:
    """A hub served in its own directory as the quick start serves it, and the README's external broker."""
    require(mosquitto_available(), "Mosquitto (apt-get install mosquitto mosquitto-clients)")
    workdir = tmp_path_factory.mktemp("readme")
    # The hub's CA, made ahead so that Mosquitto's certificate and the hub's TLS listeners come from it.
    ca = CertificateAuthority.create(workdir / CA_CERT_NAME, workdir / CA_KEY_NAME)
    server = ca.issue_server_certificate()
    tls = workdir.parent / f"{workdir.name}-tls"
    tls.mkdir()
    (tls / "server.pem").write_bytes(server.certificate_pem())
    (tls / "server.key").write_bytes(server.private_key_pem())
    (workdir / "server-ca.pem").write_bytes(ca.certificate_pem())
    trusted = {"SSL_CERT_FILE": str(workdir / CA_CERT_NAME)}  # clients and connectors trust the hub's CA
    broker = ExampleBroker(
        workdir.parent / f"{workdir.name}-mosquitto",
        Certificates(
            ca_pem=ca.certificate_pem().decode(),
            server_cert_pem=server.certificate_pem().decode(),
            server_key_pem=server.private_key_pem().decode(),
            client_cert_pem="",
            client_key_pem="",
            client_p12=b"",
            other_ca_pem="",
        ),
    )
    broker.workdir.mkdir()
    broker.start()
    try:
        with serve_process(
            workdir,
            env=trusted,
            wait_for=("MQTT WSS",),
            admin_email=None,  # the first run as the quick start shows it: the default e-mail, a printed password
            admin_password=None,
            tls_cert_file=tls / "server.pem",
            tls_key_file=tls / "server.key",
            outbound_allow="localhost,127.0.0.1,::1",  # the Mosquitto standing in for broker.example.com
        ) as hub:
            password = next(line.split()[1] for line in hub.stdout if line.strip().startswith("password:"))
            base_env = {key: value for key, value in os.environ.items() if not key.startswith("MQTTHUB_")} | trusted
            base_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}"
            walk = ReadmeWalk(
                workdir,
                base_env,
                values={
                    "http": hub.http_url.removeprefix("http://"),
                    "admin_password": password,
                    "hub_wss": str(hub.port("MQTT WSS")),
                    "broker_tcp": str(broker.tcp_port),
                    "broker_tls": str(broker.tls_port),
                    "broker_mtls": str(broker.mtls_port),
                    "broker_ws": str(broker.ws_port),
                },
                replacements=EVERYWHERE,
                hidden_modules=tuple(modules_outside("mqtthub", DOCUMENTED_EXTRAS)),
                hub=hub,
                broker=broker,
            )
            try:
                yield walk
            finally:
                walk.close()
    finally:
        broker.stop()


def test_the_readme_runs(walk: ReadmeWalk) -> None:
    """Every block, in the README's order, does what the README says, each using what the earlier ones made."""
    started = time.monotonic()
    for block in runnable_blocks():
        runner = runner_of(block)
        if runner.exempt or runner.elsewhere:
            continue
        output = walk.run(block, runner)
        print(f"{block}: {len(output)} characters of output")
    assert walk.hub is not None
    assert walk.hub.process.poll() is None, "the hub died during the walk"
    crashes = [line for line in walk.hub.stderr if "Traceback" in line or "CRITICAL" in line]
    assert not crashes, "the hub logged a traceback during the walk:\n" + "\n".join(walk.hub.stderr)
    print(f"README walked in {time.monotonic() - started:.1f}s")


def test_the_documented_extras_are_in_the_readme() -> None:
    """The extras the Python blocks run with are the ones the README tells a reader to install."""
    text = README.read_text(encoding="utf-8")
    for extra in DOCUMENTED_EXTRAS:
        assert f"pip install '.[{extra}]'" in text
        assert f"pip install 'mqtthub[{extra}]'" in text
