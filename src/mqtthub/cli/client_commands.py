"""``mqtthub pub|sub|messages|topics|stats``: talk to a running hub through the SDK.

Where to connect and with which credentials comes from the flags, else the environment
(``MQTTHUB_URL``, ``MQTTHUB_API_KEY``, ``MQTTHUB_TOKEN``), else a TOML file
(``--config``, ``MQTTHUB_CLIENT_CONFIG``, or ``~/.config/mqtthub/client.toml``) with the keys
``url``, ``api_key`` and ``token``. Output is a table, or JSON with ``--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mqtthub.client import HubClient, Message

# The SDK (httpx, websockets, pydantic, paho) is imported when a command runs, not when ``mqtthub`` starts.

DEFAULT_CONFIG = Path("~/.config/mqtthub/client.toml")

console = Console()
errors = Console(stderr=True)

UrlOption = Annotated[str | None, typer.Option("--url", help="Hub URL (MQTTHUB_URL; default http://localhost:8000).")]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", help="MQTT API token sent as X-API-Key (MQTTHUB_API_KEY).")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="Session token or MQTT API token sent as Bearer (MQTTHUB_TOKEN).")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML file with url, api_key, token (MQTTHUB_CLIENT_CONFIG).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass(frozen=True)
class Target:
    """Where to connect and as whom."""

    url: str | None
    api_key: str | None
    token: str | None


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"mqtthub: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def resolve_target(url: str | None, api_key: str | None, token: str | None, config: Path | None) -> Target:
    """Flags, then environment, then the config file."""
    path = config or (Path(os.environ["MQTTHUB_CLIENT_CONFIG"]) if os.environ.get("MQTTHUB_CLIENT_CONFIG") else None)
    explicit = path is not None
    path = (path or DEFAULT_CONFIG).expanduser()
    values: dict[str, Any] = {}
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            _fail(f"cannot read {path}: {exc}", code=2)
    elif explicit:
        _fail(f"config file {path} does not exist", code=2)

    def pick(flag: str | None, env: str, key: str) -> str | None:
        value = flag or os.environ.get(env) or values.get(key)
        return str(value) if value else None

    return Target(
        url=pick(url, "MQTTHUB_URL", "url"),
        api_key=pick(api_key, "MQTTHUB_API_KEY", "api_key"),
        token=pick(token, "MQTTHUB_TOKEN", "token"),
    )


def _client(target: Target) -> HubClient:
    from mqtthub.client import HubClient

    return HubClient(target.url, api_key=target.api_key, token=target.token)


_Result = TypeVar("_Result")


def _call(target: Target, request: Callable[[HubClient], _Result]) -> _Result:
    """Run one request through the SDK; an SDK error becomes one line on standard error and exit status 1."""
    from mqtthub.client import HubError

    try:
        with _client(target) as hub:
            return request(hub)
    except HubError as exc:
        _fail(str(exc))


def _print_json(value: BaseModel) -> None:
    console.print_json(json.dumps(value.model_dump(mode="json")))


def _message_row(message: Message) -> tuple[str, str, str, str, str]:
    return (
        message.timestamp.isoformat(timespec="seconds"),
        message.topic,
        message.payload,
        str(message.qos),
        "yes" if message.retain else "",
    )


def pub(
    topic: Annotated[str, typer.Argument(help="Topic name.")],
    payload: Annotated[str, typer.Argument(help="Message text.")] = "",
    qos: Annotated[int, typer.Option(min=0, max=2, help="Quality of service.")] = 0,
    retain: Annotated[bool, typer.Option("--retain", help="Keep as the topic's retained message.")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a message through the hub."""
    target = resolve_target(url, api_key, token, config)
    result = _call(target, lambda hub: hub.publish(topic, payload, qos=qos, retain=retain))
    if as_json:
        _print_json(result)
    else:
        console.print(f"published {result.payload_size} bytes to {result.topic} (qos {result.qos})", highlight=False)


def sub(
    topics: Annotated[list[str] | None, typer.Argument(help="Filters; none follows the recorded messages.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Exit after this many messages.")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print live messages until Ctrl+C (reconnecting when the connection drops)."""
    from mqtthub.client import HubError, StreamClient

    target = resolve_target(url, api_key, token, config)

    async def follow() -> None:
        received = 0
        async with StreamClient(target.url, api_key=target.api_key, token=target.token, topics=topics or ()) as stream:
            if not as_json:
                errors.print(f"listening on {stream.url} (Ctrl+C to stop)", highlight=False)
            async for message in stream:
                if as_json:
                    print(message.model_dump_json(), flush=True)
                else:
                    console.print("  ".join(_message_row(message)[:3]), highlight=False, markup=False)
                received += 1
                if count is not None and received >= count:
                    return

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(follow())
    except HubError as exc:
        _fail(str(exc))


def messages(
    topic: Annotated[str | None, typer.Option(help="Topic name or filter (+, #).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Messages skipped, newest first.")] = 0,
    since: Annotated[str | None, typer.Option(help="Only messages at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only messages at or before (ISO 8601).")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the message history, newest first."""
    target = resolve_target(url, api_key, token, config)
    page = _call(target, lambda hub: hub.get_messages(topic, limit=limit, offset=offset, since=since, until=until))
    if as_json:
        _print_json(page)
        return
    table = Table(
        "time",
        "topic",
        "payload",
        "qos",
        "retained",
        title=f"{page.count} of {page.total} messages (offset {page.offset})",
    )
    for message in page.messages:
        table.add_row(*_message_row(message))
    console.print(table)


def topics(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the topics in the history and the recorded filters."""
    listing = _call(resolve_target(url, api_key, token, config), lambda hub: hub.get_topics())
    if as_json:
        _print_json(listing)
        return
    table = Table("topic", "messages", "last message", title=f"{listing.count} topics")
    for info in listing.topics:
        table.add_row(info.topic, str(info.message_count), info.last_message_at.isoformat(timespec="seconds"))
    console.print(table)
    console.print("recorded filters: " + (", ".join(listing.subscriptions) or "none"), highlight=False)


def stats(
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show message statistics of your organization."""
    result = _call(resolve_target(url, api_key, token, config), lambda hub: hub.get_stats())
    if as_json:
        _print_json(result)
        return
    table = Table("statistic", "value", title="messaging")
    for name in (
        "total_messages",
        "unique_topics",
        "recent_messages",
        "active_subscriptions",
        "mqtt_connected",
        "websocket_connections",
        "uptime",
    ):
        table.add_row(name, str(getattr(result, name)))
    console.print(table)
    if result.topic_counts:
        counts = Table("topic", "messages", title="messages per topic")
        for name, value in result.topic_counts.items():
            counts.add_row(name, str(value))
        console.print(counts)


def register_client_commands(app: typer.Typer) -> None:
    """Add the client commands to the ``mqtthub`` command."""
    app.command()(pub)
    app.command()(sub)
    app.command()(messages)
    app.command()(topics)
    app.command()(stats)
