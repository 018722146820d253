"""Real action targets for tests: an HTTP server that records requests, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class RecordedRequest:
    """One request the HTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class HTTPRecorder:
    """Answers every request with ``status`` (or the next of ``statuses``) and records it."""

    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    status: int = 200
    connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = field(default_factory=dict)
    """Open connections and the tasks serving them, ended when the server stops (a hub process keeps them alive)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one HTTP/1.1 connection (keep-alive honoured)."""
        task = asyncio.current_task()
        assert task is not None
        self.connections[writer] = task
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(RecordedRequest(method, path, headers, body))
                status = self.statuses.pop(0) if self.statuses else self.status
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            del self.connections[writer]
            writer.close()


@asynccontextmanager
async def http_recorder() -> AsyncIterator[HTTPRecorder]:
    """An HTTP server on 127.0.0.1 and an ephemeral port."""
    recorder = HTTPRecorder()
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    async with server:
        try:
            yield recorder
        finally:
            tasks = list(recorder.connections.values())
            for writer in list(recorder.connections):
                writer.close()
            await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Mailbox:
    """Messages received by the SMTP server."""

    port: int = 0
    messages: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd hook)
        """Keep the message."""
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and an ephemeral port."""
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox, hostname="localhost"), "127.0.0.1", 0)
    mailbox.port = server.sockets[0].getsockname()[1]
    try:
        yield mailbox
    finally:
        server.close()
        await server.wait_closed()
