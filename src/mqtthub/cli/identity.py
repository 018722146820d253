"""``mqtthub org|device|token|cert``: manage identities directly in the hub's database.

Like ``mqtthub db upgrade``, these commands read the settings (database URL, data
directory with the secret key and the CA) and work on the database without a running
hub, so run them with the hub's settings. Secrets (device tokens, API tokens, PKCS#12
passwords) are printed once. A revocation or a disabled device stops new connections at
once; clients already connected to a running hub are disconnected by the hub's own API
(``DELETE …/mqtt-tokens/{id}`` and friends), which the CLI does not reach.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mqtthub.config import Settings, load_settings
from mqtthub.errors import ConfigurationError, MQTTHubError, NotFoundError

if TYPE_CHECKING:
    # The work happens in functions that import what they need when they run, so that
    # `mqtthub --help` and the other commands do not pay for the database and the CA.
    from sqlalchemy.ext.asyncio import AsyncSession

    from mqtthub.auth.mqtt_tokens import MqttTokenInfo
    from mqtthub.crypto import SecretBox
    from mqtthub.models import Device, MqttApiToken, Organization

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

org_app = typer.Typer(help="Organizations.", no_args_is_help=True)
device_app = typer.Typer(help="Devices and their tokens.", no_args_is_help=True)
token_app = typer.Typer(help="MQTT API tokens for apps.", no_args_is_help=True)
cert_app = typer.Typer(help="Client certificates from the hub's CA.", no_args_is_help=True)

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.", exists=True)
]
DatabaseUrl = Annotated[str | None, typer.Option(help="Database URL (MQTTHUB_DATABASE_URL).")]
OrgOption = Annotated[str, typer.Option("--org", help="Organization id or short id.")]


def register_identity_commands(app: typer.Typer) -> None:
    """Add ``org``, ``device``, ``token`` and ``cert`` to the ``mqtthub`` command."""
    app.add_typer(org_app, name="org")
    app.add_typer(device_app, name="device")
    app.add_typer(token_app, name="token")
    app.add_typer(cert_app, name="cert")


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"mqtthub: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _run(env_file: Path | None, database_url: str | None, work: Callable[[Context], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on the configured database."""
    try:
        settings = load_settings(env_file, database_url=database_url)
    except ConfigurationError as exc:
        _fail(f"invalid setting {exc.message}", code=2)

    from mqtthub.crypto import SecretBox, load_secret_key
    from mqtthub.db.location import DATABASE_ERRORS, check_location, describe, unavailable

    url = settings.database_url
    try:
        check_location(url, create=False)
        secrets = SecretBox(load_secret_key(settings.secret_key, settings.data_dir))
    except ConfigurationError as exc:
        _fail(exc.message)
    # Said on standard error, so that what a command prints (ids, secrets) can still be piped.
    errors.print(f"mqtthub: database {describe(url)}", highlight=False, markup=False, soft_wrap=True)

    async def main() -> T:
        from mqtthub.db import Database
        from mqtthub.db.migrate import upgrade

        try:
            await upgrade(url)
            async with Database(url) as database, database.session() as session:
                return await work(Context(settings, secrets, session))
        except DATABASE_ERRORS as exc:
            raise unavailable(url, exc) from exc

    try:
        return asyncio.run(main())
    except MQTTHubError as exc:
        _fail(exc.message)


class Context:
    """What a command works with: settings, the secret box and an open session."""

    def __init__(self, settings: Settings, secrets: SecretBox, session: AsyncSession) -> None:
        self.settings = settings
        self.secrets = secrets
        self.session = session

    async def organization(self, reference: str) -> Organization:
        """The organization with this id or short id."""
        from sqlalchemy import or_, select

        from mqtthub.models import Organization

        found = await self.session.scalar(
            select(Organization).where(or_(Organization.id == reference, Organization.short_id == reference))
        )
        if found is None:
            raise NotFoundError(f"no organization {reference!r}")
        return found


def _say(line: str) -> None:
    """One line of output, never wrapped (secrets must stay copyable) and never styled."""
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def _show(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A table on a terminal; tab-separated lines (ids unabridged) when piped."""
    if not console.is_terminal:
        for row in (columns, *rows):
            _say("\t".join(row))
        return
    table = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


# --- org ----------------------------------------------------------------------------------------


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="Display name.")],
    short_id: Annotated[
        str | None, typer.Option(help="6-10 lowercase letters and digits (derived if omitted).")
    ] = None,
    env_file: EnvFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an organization."""

    async def work(context: Context) -> Organization:
        from mqtthub.auth.organizations import create_organization

        return await create_organization(context.session, name, short_id)

    organization = _run(env_file, database_url, work)
    _say(f"organization {organization.id} (short id {organization.short_id})")


@org_app.command("list")
def org_list(env_file: EnvFile = None, database_url: DatabaseUrl = None) -> None:
    """List organizations."""

    async def work(context: Context) -> list[Organization]:
        from mqtthub.auth.organizations import list_organizations

        return await list_organizations(context.session)

    rows = [(org.id, org.short_id, org.name) for org in _run(env_file, database_url, work)]
    _show(("id", "short id", "name"), rows)


# --- device -------------------------------------------------------------------------------------


@device_app.command("create")
def device_create(
    name: Annotated[str, typer.Argument(help="Display name.")],
    org: OrgOption,
    metadata: Annotated[str, typer.Option(help="JSON object kept with the device.")] = "{}",
    token_days: Annotated[
        int | None, typer.Option(help="Lifetime of its first token in days (default MQTTHUB_DEVICE_TOKEN_EXPIRY_DAYS).")
    ] = None,
    env_file: EnvFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a device and print its id (MQTT user name) and a token (MQTT password), once."""
    try:
        parsed: Any = json.loads(metadata)
    except json.JSONDecodeError as exc:
        _fail(f"--metadata is not JSON: {exc}", code=2)
    if not isinstance(parsed, dict):
        _fail("--metadata must be a JSON object", code=2)

    async def work(context: Context) -> tuple[Device, str]:
        from mqtthub.auth.device_tokens import issue_device_token
        from mqtthub.auth.devices import create_device

        organization = await context.organization(org)
        device = await create_device(context.session, organization.id, name, parsed)
        days = token_days or context.settings.device_token_expiry_days
        issued = await issue_device_token(context.session, context.secrets, device, lifetime=timedelta(days=days))
        return device, issued.token

    device, token = _run(env_file, database_url, work)
    _say(f"device id (MQTT user name): {device.id}")
    _say(f"device token (MQTT password, shown only now): {token}")


@device_app.command("list")
def device_list(org: OrgOption, env_file: EnvFile = None, database_url: DatabaseUrl = None) -> None:
    """List an organization's devices."""

    async def work(context: Context) -> list[Device]:
        from mqtthub.auth.devices import list_devices

        return await list_devices(context.session, (await context.organization(org)).id)

    rows = [
        (device.id, device.name, "yes" if device.enabled else "no") for device in _run(env_file, database_url, work)
    ]
    _show(("id", "name", "enabled"), rows)


@device_app.command("disable")
def device_disable(
    device_id: Annotated[str, typer.Argument(help="Device id.")],
    env_file: EnvFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Disable a device: its MQTT connections are refused from now on."""

    async def work(context: Context) -> None:
        from mqtthub.auth.devices import set_device_enabled
        from mqtthub.models import Device

        device = await context.session.get(Device, device_id)
        if device is None:
            raise NotFoundError(f"no device {device_id!r}")
        await set_device_enabled(context.session, device, False)

    _run(env_file, database_url, work)
    _say(f"device {device_id} disabled")


# --- token --------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A label, e.g. the app's name.")],
    org: OrgOption,
    days: Annotated[int, typer.Option(help="Days until it expires.", min=1, max=3650)] = 90,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    subscribe: Annotated[
        list[str] | None,
        typer.Option(help="Topic filter it may subscribe with (repeatable; default device/+/telemetry/#)."),
    ] = None,
    publish: Annotated[
        list[str] | None, typer.Option(help="Topic filter it may publish to (repeatable; default none).")
    ] = None,
    env_file: EnvFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an MQTT API token (user name = password = token) and print it once."""

    async def work(context: Context) -> tuple[MqttApiToken, str]:
        from mqtthub.auth.mqtt_tokens import issue_api_token

        organization = await context.organization(org)
        issued = await issue_api_token(
            context.session,
            context.secrets,
            organization.id,
            name=name,
            description=description,
            lifetime=timedelta(days=days),
            subscribe=subscribe or None,
            publish=publish or [],
        )
        return issued.record, issued.token

    record, token = _run(env_file, database_url, work)
    _say(f"token id: {record.id}")
    _say(f"expires at: {record.expires_at.isoformat()}")
    _say(f"subscribe: {', '.join(record.subscribe) or '-'}; publish: {', '.join(record.publish) or '-'}")
    _say(f"token (shown only now): {token}")


@token_app.command("list")
def token_list(org: OrgOption, env_file: EnvFile = None, database_url: DatabaseUrl = None) -> None:
    """List an organization's MQTT API tokens (never their secrets)."""

    async def work(context: Context) -> list[MqttTokenInfo]:
        from mqtthub.auth.mqtt_tokens import MqttTokenInfo, list_api_tokens

        records = await list_api_tokens(context.session, (await context.organization(org)).id)
        return [MqttTokenInfo.of(record) for record in records]

    rows = [
        (
            token.token_id,
            token.name,
            token.token_hint,
            token.status,
            token.expires_at.isoformat(timespec="seconds"),
            token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "never",
        )
        for token in _run(env_file, database_url, work)
    ]
    _show(("id", "name", "hint", "status", "expires at", "last used"), rows)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (from `token list`).")],
    env_file: EnvFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an MQTT API token: connections with it are refused from now on."""

    async def work(context: Context) -> None:
        from mqtthub.auth.mqtt_tokens import revoke_api_token
        from mqtthub.models import MqttApiToken

        record = await context.session.get(MqttApiToken, token_id)
        if record is None:
            raise NotFoundError(f"no MQTT API token {token_id!r}")
        await revoke_api_token(context.session, record)

    _run(env_file, database_url, work)
    _say(f"token {token_id} revoked")


# --- cert ---------------------------------------------------------------------------------------


@cert_app.command("issue")
def cert_issue(
    out: Annotated[Path, typer.Option("--out", help="Where to write the PKCS#12 bundle (.p12).", dir_okay=False)],
    device: Annotated[str | None, typer.Option(help="Device id to issue for.")] = None,
    user: Annotated[str | None, typer.Option(help="E-mail of the user to issue for.")] = None,
    env_file: EnvFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a client certificate for a device or a user; writes a PKCS#12 file and prints its password once."""
    if (device is None) == (user is None):
        _fail("give exactly one of --device and --user", code=2)
    if out.exists():
        _fail(f"{out} exists; not overwriting it", code=2)

    async def work(context: Context) -> tuple[str, str, bytes, str]:
        from sqlalchemy import select

        from mqtthub.auth.ca import CertificateAuthority
        from mqtthub.auth.certificates import issue_certificate, take_download
        from mqtthub.models import Device, User

        ca = CertificateAuthority.load_or_create(context.settings)
        validity = timedelta(days=context.settings.client_cert_validity_days)
        if device is not None:
            found = await context.session.get(Device, device)
            if found is None:
                raise NotFoundError(f"no device {device!r}")
            bundle = await issue_certificate(
                context.session,
                context.secrets,
                ca,
                organization_id=found.organization_id,
                validity=validity,
                device=found,
            )
        else:
            account = await context.session.scalar(select(User).where(User.email == (user or "").lower()))
            if account is None or account.organization_id is None:
                raise NotFoundError(f"no user {user!r} in an organization")
            bundle = await issue_certificate(
                context.session,
                context.secrets,
                ca,
                organization_id=account.organization_id,
                validity=validity,
                user=account,
            )
        _, p12 = await take_download(context.session, context.secrets, bundle.download_secret)
        return bundle.record.serial, bundle.client_id, p12, bundle.p12_password

    serial, client_id, p12, password = _run(env_file, database_url, work)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(p12)
    _say(f"certificate {serial} written to {out}")
    _say(f"MQTT client id: {client_id}")
    _say(f"PKCS#12 password (shown only now): {password}")
