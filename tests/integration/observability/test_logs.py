"""The log of a real hub: JSON lines under names that say where they come from, one line per episode."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import httpx
import pytest

from tests.integration.messaging.conftest import threaded_hub
from tests.integration.observability.scrape import scrape, value
from tests.support.access import api_token
from tests.support.hubproc import serve_process
from tests.support.paho_clients import paho_client


def test_served_hub_logs_json_lines_under_hub_names(tmp_path: Path) -> None:
    with serve_process(tmp_path, log_format="json", log_level="INFO", log_http_access=True) as hub:
        assert httpx.get(hub.http_url + "/health", timeout=30).status_code == 200
        hub.stop(signal.SIGINT)
    entries = [json.loads(line) for line in hub.stderr if line.strip()]
    loggers = {entry["logger"] for entry in entries}
    assert {"mqtthub.http", "mqtthub.http.access"} <= loggers
    assert not [name for name in loggers if name.startswith("uvicorn")]
    access = [entry["message"] for entry in entries if entry["logger"] == "mqtthub.http.access"]
    assert any("GET /health" in line and "200" in line for line in access)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)


def test_a_flood_of_denied_publishes_is_one_log_line_and_counted_in_full(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mqtthub.broker.packet_handlers")
    with threaded_hub(tmp_path) as hub:
        app = paho_client(hub.mqtt(hub.call(api_token(hub.admin, publish=["allowed/#"]))))
        try:
            for n in range(200):
                app.publish(f"denied/{n}", b"x", qos=1)
            app.publish("denied/last", b"x", qos=1).wait_for_publish(timeout=30)
        finally:
            app.disconnect()
            app.loop_stop()
        samples = scrape(hub.http_url + "/metrics")
    assert value(samples, "mqtthub_mqtt_messages_dropped_total", reason="unauthorized") == 201
    denied = [record for record in caplog.records if record.getMessage().startswith("publish denied")]
    assert len(denied) == 1
