"""``mqtthub``: serve the hub, manage its database, and talk to a running hub."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from mqtthub import __version__
from mqtthub.cli.client_commands import register_client_commands
from mqtthub.cli.identity import register_identity_commands
from mqtthub.cli.listen import register_listen_command
from mqtthub.config import Settings, load_settings
from mqtthub.errors import ConfigurationError, UnavailableError

app = typer.Typer(name="mqtthub", help="Everything around MQTT in one install.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True)

EnvFileOption = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.", exists=True)
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to standard error and exit with ``code``."""
    errors.print(f"mqtthub: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_exit(env_file: Path | None, **overrides: Any) -> Settings:
    """Settings from environment, file and flags; an invalid value exits 2 with one line."""
    try:
        return load_settings(env_file, **overrides)
    except ConfigurationError as exc:
        fail(f"invalid setting {exc.message}")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"mqtthub {__version__}", highlight=False)


@app.command()
def serve(
    env_file: EnvFileOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (MQTTHUB_HOST).")] = None,
    http_port: Annotated[int | None, typer.Option(help="HTTP API port (MQTTHUB_HTTP_PORT).")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="MQTT TCP port (MQTTHUB_MQTT_PORT).")] = None,
    ws_port: Annotated[int | None, typer.Option(help="MQTT WebSocket port (MQTTHUB_WS_PORT).")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL (MQTTHUB_DATABASE_URL).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (MQTTHUB_DATA_DIR).")] = None,
    allow_anonymous: Annotated[
        bool | None, typer.Option("--allow-anonymous/--no-anonymous", help="MQTTHUB_ALLOW_ANONYMOUS.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error (MQTTHUB_LOG_LEVEL).")] = None,
) -> None:
    """Run the hub: broker, HTTP API and every background service, until Ctrl+C or SIGTERM."""
    settings = settings_or_exit(
        env_file,
        host=host,
        http_port=http_port,
        mqtt_port=mqtt_port,
        ws_port=ws_port,
        database_url=database_url,
        data_dir=data_dir,
        allow_anonymous=allow_anonymous,
        log_level=log_level,
    )
    from mqtthub.cli.serve import run_hub, run_on_loop

    if sys.platform != "win32":
        # main() gives SIGPIPE its default action so that `mqtthub ... | head` ends quietly. A server must
        # not die of it: writing to a socket whose peer is gone (a client, a database that was stopped)
        # is an error the code handles.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        run_on_loop(settings.event_loop, run_hub(settings, console))
    except ConfigurationError as exc:
        fail(exc.message)
    except UnavailableError as exc:
        fail(f"cannot start: {exc.message}", code=1)
    except OSError as exc:
        fail(f"cannot start: {exc}", code=1)


@db_app.command("upgrade")
def db_upgrade(
    env_file: EnvFileOption = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL (MQTTHUB_DATABASE_URL).")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create the SQLite file when it does not exist.")] = False,
) -> None:
    """Apply every pending migration to the database (an existing one, unless --create).

    With --create, a missing SQLite file and a missing secret key in the data directory are made, so that the
    identity commands can prepare a hub before its first start.
    """
    settings = settings_or_exit(env_file, database_url=database_url)
    from mqtthub.crypto import load_or_create_secret_key
    from mqtthub.db.location import DATABASE_ERRORS, check_location, describe, unavailable
    from mqtthub.db.migrate import upgrade_sync

    try:
        check_location(settings.database_url, create=create)
        if create:  # a new hub's database comes with the key its tokens are hashed under
            load_or_create_secret_key(settings.secret_key, settings.data_dir)
        upgrade_sync(settings.database_url)
    except ConfigurationError as exc:
        fail(exc.message, code=1)
    except DATABASE_ERRORS as exc:
        fail(unavailable(settings.database_url, exc).message, code=1)
    console.print(f"database {describe(settings.database_url)} is up to date", highlight=False)


register_client_commands(app)
register_listen_command(app)
register_identity_commands(app)


def main() -> None:
    """Console-script entry point."""
    if sys.platform != "win32":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
