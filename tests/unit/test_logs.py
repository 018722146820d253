from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mqtthub.logs import configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.parametrize("level", ["WARNING", "warning"])
def test_json_lines_carry_the_text_fields_and_server_lines_get_hub_names(captured: io.StringIO, level: str) -> None:
    configure_logging(level, "json", captured)
    logging.getLogger("uvicorn.error").warning("server %s", "started")
    logging.getLogger("uvicorn.access").warning('127.0.0.1 - "GET / HTTP/1.1" 200')
    logging.getLogger("mqtthub.broker.core").warning("episode", extra={"repeated": 7})
    logging.getLogger("mqtthub.broker.core").info("below the level")
    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [entry["logger"] for entry in entries] == ["mqtthub.http", "mqtthub.http.access", "mqtthub.broker.core"]
    assert entries[0]["message"] == "server started"
    assert entries[2]["repeated"] == 7
    assert {"time", "level", "logger", "message"} <= set(entries[0])


def test_text_lines_show_names_and_extra_fields(captured: io.StringIO) -> None:
    configure_logging("INFO", "text", captured)
    # uvicorn adds a coloured copy of its message for terminals: not a field worth a line's space.
    started = "Started server process [%d]"
    logging.getLogger("uvicorn.error").info(started, 42, extra={"color_message": "\x1b[36m" + started})
    logging.getLogger("mqtthub.telemetry.store").info("rejected", extra={"repeated": 3})
    first, second = captured.getvalue().splitlines()
    assert first.endswith(" INFO    mqtthub.http: Started server process [42]")
    assert second.endswith("mqtthub.telemetry.store: rejected repeated=3")
