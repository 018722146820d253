"""Logging set-up: readable text for people or one JSON object per line for collectors.

Both formats carry the same fields: time, level, logger name, message, and the exception and
any ``extra`` fields when a record has them (episode summaries carry ``repeated``, see
:mod:`mqtthub.broker.episodes`). Logger names say where a line comes from: the hub's own
modules log under ``mqtthub.<package>.<module>``, and the embedded HTTP server's lines, which
uvicorn logs as ``uvicorn.error`` and ``uvicorn.access``, come out as ``mqtthub.http`` and
``mqtthub.http.access``.

No secret reaches the log: whatever logger a line comes from (uvicorn's WebSocket and access
lines included), credentials in it are replaced by ``***`` when it is written: query-string
parameters that carry them (``?token=``, ``?api_key=``, ``password=``, …), bearer tokens, session
tokens (JWT) and the hub's own API and device tokens wherever they appear (:func:`redact`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

SERVER_LOGGERS = {"uvicorn": "mqtthub.http", "uvicorn.error": "mqtthub.http", "uvicorn.access": "mqtthub.http.access"}
"""Names of the HTTP server's loggers, and the names their lines carry in the hub's log."""

_SECRETS = (
    # Query-string and form parameters that carry credentials.
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9_])((?:access_|api_|auth_|id_|refresh_)?(?:token|key|apikey|password|passwd|secret)=)"
            r"[^&\s\"'#]+"
        ),
        r"\1***",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "***"),  # a JWT
    (re.compile(r"\b(mqh_mqtt_[a-z0-9]{6,10}_)[A-Za-z0-9]{32}\b"), r"\1***"),
    (re.compile(r"\b(mqh_dev_)[A-Za-z0-9]{40}\b"), r"\1***"),
)


def redact(text: str) -> str:
    """``text`` with every credential it carries replaced by ``***`` (see the module docstring)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


# Not extra fields: what every record has, and uvicorn's terminal-coloured copy of its own message.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call added with ``extra=``."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ``extra`` fields, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {key: value for key, value in extra_fields(record).items() if key not in entry}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then the ``extra`` fields as ``key=value``, then the exception if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        extra = extra_fields(record)
        return line + "".join(f" {key}={value}" for key, value in extra.items()) if extra else line


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then removes credentials from the line (:func:`redact`)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._inner.format(record))


class ServerLoggerNames(logging.Filter):
    """Renames the HTTP server's records (:data:`SERVER_LOGGERS`) so their logger name says what they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = SERVER_LOGGERS.get(record.name, record.name)
        return True


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Route every logger to ``stream`` (standard error) at ``level`` (any case) in format ``"text"`` or ``"json"``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(RedactingFormatter(JsonFormatter() if fmt == "json" else TextFormatter()))
    handler.addFilter(ServerLoggerNames())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in SERVER_LOGGERS:
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)
