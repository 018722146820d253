"""Running the hub in the foreground, stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any

from rich.console import Console

from mqtthub.config import Settings
from mqtthub.errors import ConfigurationError
from mqtthub.filemodes import PRIVATE_UMASK
from mqtthub.hub import Hub
from mqtthub.logs import configure_logging
from mqtthub.memory import tune_collector

logger = logging.getLogger(__name__)


def run_on_loop(choice: str, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on the event loop ``MQTTHUB_EVENT_LOOP`` names (``auto``: uvloop when installed)."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                main.close()
                raise ConfigurationError(
                    "MQTTHUB_EVENT_LOOP=uvloop needs uvloop (pip install 'mqtthub[speed]')"
                ) from None
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


async def run_hub(settings: Settings, console: Console) -> None:
    """Start the hub, print where it listens (and first-run credentials once), serve until a signal."""
    configure_logging(settings.log_level, settings.log_format)
    logger.debug("event loop: %s", type(asyncio.get_running_loop()).__module__.split(".")[0])
    os.umask(PRIVATE_UMASK)  # every file the hub creates is its account's alone
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Hub(settings) as hub:
        if hub.first_run is not None:
            console.print("[bold]First run: an administrator account was created.[/bold]")
            console.print(f"  e-mail:   {hub.first_run.email}", highlight=False)
            if hub.first_run.password is not None:
                console.print(f"  password: {hub.first_run.password}  (shown only now)", highlight=False)
        for label, url in hub.mqtt_urls.items():
            console.print(f"{label} listening on {url}", highlight=False)
        host, port = hub.http_address
        console.print(f"HTTP API listening on http://{host}:{port}", highlight=False)
        if hub.metrics_address is not None:
            host, port = hub.metrics_address
            console.print(f"Metrics listening on http://{host}:{port}/metrics", highlight=False)
        if hub.auth_backend_address is not None:
            host, port = hub.auth_backend_address
            console.print(f"Auth backend listening on http://{host}:{port}/auth-backend", highlight=False)
        console.file.flush()  # scripts and supervisors read these lines from a pipe
        tune_collector()
        await hub.run(stop)
