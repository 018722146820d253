"""The broker's authenticator and authorizer, backed by the identity database.

Who may connect (:class:`DatabaseAuthenticator`):

- a **device**: username = device id, password = one of its device tokens;
- an **app**: username = password = an MQTT API token (``mqh_mqtt_…``);
- a **certificate**: a TLS client certificate issued by the hub's CA (verified by the
  listener); its serial must not be revoked and its CN names the device or user;
- **anonymous** clients, only with ``allow_anonymous``, in the default organization;
- a **platform administrator**: username = e-mail, password = login password. Only this
  principal works in the global namespace: it sees every organization (under
  ``org/<short id>/``) and the broker's ``$SYS/`` topics, like a superuser elsewhere. Its
  attempts count against the same per-account and per-address limits as HTTP login
  (:class:`~mqtthub.auth.attempts.LoginGuard`), and the password is checked on the bounded
  password workers, never on the event loop; when they are busy the answer is 0x89 (Server busy).

Every other principal is mounted at ``org/<organization short id>/``, so its topics live in its
organization's namespace and nothing it names can reach another organization. Its topic
rules (:mod:`mqtthub.auth.acl`) travel in its attributes, so :class:`TopicAuthorizer`
decides without touching the database.

A connection storm (a fleet reconnecting after a restart) must not queue every CONNECT
behind its own database round trip. Tokens and the anonymous organization are looked up
in batches, one query of each kind in flight (:mod:`mqtthub.auth.batching`); accepted
credentials are remembered for ``mqtt_auth_cache_ttl`` seconds
(:mod:`mqtthub.auth.credential_cache`), forgotten at once when ``Broker.invalidate`` names
their principal; ``last_used_at`` is written in the background
(:mod:`mqtthub.auth.last_used`).

Refusals use reason code 0x87 "Not authorized", which 3.1.1 clients receive as CONNACK
return code 5 — the code document 000 promises for a wrong, expired or revoked token. They
are logged without secrets, counted by reason, and an address that keeps failing waits
longer and longer (up to ``mqtt_auth_max_delay``) before each refusal.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mqtthub.auth.acl import ADMIN_RULES, ANONYMOUS_RULES, TopicRules, device_rules, user_rules
from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.batching import BatchLookup
from mqtthub.auth.credential_cache import CachedCredential, CredentialCache
from mqtthub.auth.credentials import API_TOKEN_PATTERN, API_TOKEN_PREFIX
from mqtthub.auth.last_used import LastUsedWriter, TokenModel
from mqtthub.auth.operator_rules import OperatorRules
from mqtthub.auth.passwords import PasswordWorkers
from mqtthub.auth.ratelimit import SlidingWindowLimiter
from mqtthub.broker.hooks import Action, ConnectInfo, Principal
from mqtthub.config import Settings
from mqtthub.crypto import SecretBox
from mqtthub.db import Database
from mqtthub.db.base import utcnow
from mqtthub.db.rows import fetch_all, in_list, json_value, utc
from mqtthub.errors import AuthenticationRefused, RateLimitedError, UnavailableError
from mqtthub.models import ClientCertificate, Device, DeviceToken, MqttApiToken, Organization, User, UserRole
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.tenancy import namespace_prefix

logger = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def mountpoint_of(organization: Organization) -> str:
    """The broker topic namespace of an organization."""
    return namespace_prefix(organization.short_id)


class _Refusal(Exception):
    """Internal: why a CONNECT is refused (a counter name and a log line, never a secret)."""

    def __init__(self, reason: str, detail: str, reason_code: int = ReasonCode.NOT_AUTHORIZED) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.reason_code = reason_code


class DatabaseAuthenticator:
    """Authenticates MQTT clients against devices, tokens and certificates in the database.

    Args:
        database: The open identity database.
        secrets: Hashes presented tokens the way they were stored.
        settings: ``allow_anonymous``, ``default_organization``, ``mqtt_auth_free_failures``,
            ``mqtt_auth_max_delay``, ``mqtt_auth_cache_ttl`` and ``max_connections`` are read.
        passwords: Checks administrators' passwords; its own pool sized from ``settings`` when not given.
        guard: Password login limits shared with HTTP login; its own from ``settings`` when not given.
        failure_window: Seconds over which an address's failures are counted.
    """

    def __init__(
        self,
        database: Database,
        secrets: SecretBox,
        settings: Settings,
        *,
        passwords: PasswordWorkers | None = None,
        guard: LoginGuard | None = None,
        failure_window: float = 60.0,
    ) -> None:
        self._database = database
        self._secrets = secrets
        self._passwords = passwords or PasswordWorkers.from_settings(settings)
        self._guard = guard or LoginGuard.from_settings(settings)
        self._allow_anonymous = settings.allow_anonymous
        self._default_organization = settings.default_organization
        self._free_failures = settings.mqtt_auth_free_failures
        self._max_delay = settings.mqtt_auth_max_delay
        self._failures = SlidingWindowLimiter(max(1, settings.mqtt_auth_free_failures), failure_window)
        self.cache = CredentialCache(settings.mqtt_auth_cache_ttl, max(1, settings.max_connections))
        """Accepted credentials (see the module docstring)."""
        self.last_used = LastUsedWriter(database)
        self._api_tokens = BatchLookup(database.autocommit, _fetch_api_tokens, name="API token")
        self._device_tokens = BatchLookup(database.autocommit, _fetch_device_tokens, name="device token")
        self._organizations = BatchLookup(
            database.autocommit, self._fetch_anonymous_organization, name="anonymous organization"
        )
        self.accepted: Counter[str] = Counter()
        """Successful authentications per principal kind."""
        self.refused: Counter[str] = Counter()
        """Refusals per reason (``unknown_token``, ``expired``, ``revoked``, …)."""

    def admit(self, info: ConnectInfo) -> Principal | Awaitable[Principal]:
        """The client's principal at once when its credential is remembered, else an awaitable that decides.

        A presented token is hashed once here: the digest is the cache key and, on a miss, what the
        batched lookup asks the database for. A token not remembered is answered by a future that the
        lookup's answer completes through callbacks, with no task per CONNECT (a fleet reconnecting at once
        has thousands waiting). The awaitable raises :class:`AuthenticationRefused` (0x87).
        """
        key = self._cache_key(info)
        if key is not None:
            entry = self.cache.get(key)
            if entry is not None:
                self._note_use(MqttApiToken if key[0] == "app" else DeviceToken, entry)
                self.accepted[entry.principal.kind] += 1
                if self.cache.refresh_due(entry):
                    self.cache.refresh(self._refresh(info, key, entry.principal.id))
                return entry.principal
            epoch = self.cache.epoch
            if key[0] == "app":
                return self._answer(info, self._api_tokens.future(key[1]), partial(self._api_principal, key, epoch))
            if key[0] == "device":
                found = self._device_tokens.future(key[2])
                return self._answer(info, found, partial(self._device_principal, key, epoch))
        return self._authenticate(info, key)

    def _answer(
        self, info: ConnectInfo, found: asyncio.Future[Any], principal_of: Callable[[Any], Principal]
    ) -> asyncio.Future[Principal]:
        """The principal that ``principal_of`` makes of a looked-up row, as a future."""
        answer: asyncio.Future[Principal] = found.get_loop().create_future()
        found.add_done_callback(partial(self._answered, info, principal_of, answer))
        return answer

    def _answered(
        self,
        info: ConnectInfo,
        principal_of: Callable[[Any], Principal],
        answer: asyncio.Future[Principal],
        found: asyncio.Future[Any],
    ) -> None:
        if answer.cancelled():
            return  # nobody waits for it
        try:
            principal = principal_of(found.result())
        except _Refusal as refusal:
            refused = AuthenticationRefused(refusal.detail, reason_code=refusal.reason_code)
            delay = self._refused(info, refusal)
            if delay:
                answer.get_loop().call_later(delay, _refuse_later, answer, refused)
            else:
                answer.set_exception(refused)
        except Exception as exc:  # the lookup failed: the broker answers 0x88 (Server unavailable)
            answer.set_exception(exc)
        else:
            self.accepted[principal.kind] += 1
            answer.set_result(principal)

    async def _refresh(self, info: ConnectInfo, key: tuple[str, ...], principal_id: str) -> None:
        """Check a remembered credential again (see :mod:`~mqtthub.auth.credential_cache`): a fresh entry, or none."""
        try:
            await self._identify(info, key)
        except _Refusal as refusal:
            logger.debug("a remembered MQTT credential is now refused: %s", refusal.detail)
            self.cache.forget(principal_id)

    async def authenticate(self, info: ConnectInfo) -> Principal:
        """Return the client's principal or raise :class:`AuthenticationRefused` (0x87): :meth:`admit`, awaited."""
        admitted = self.admit(info)
        return admitted if isinstance(admitted, Principal) else await admitted

    async def _authenticate(self, info: ConnectInfo, key: tuple[str, ...] | None) -> Principal:
        try:
            principal = await self._identify(info, key)
        except _Refusal as refusal:
            await self._slow_down(info, refusal)
            raise AuthenticationRefused(refusal.detail, reason_code=refusal.reason_code) from None
        self.accepted[principal.kind] += 1
        return principal

    async def settle(self) -> None:
        """Write the token uses noted so far and give back the connections held for lookups.

        Called before the database closes; the authenticator keeps working afterwards.
        """
        await self.cache.settle()
        await self.last_used.settle()
        for lookup in (self._api_tokens, self._device_tokens, self._organizations):
            await lookup.settle()

    @property
    def lookup_queries(self) -> int:
        """Database queries run so far to look up tokens and the anonymous organization."""
        return self._api_tokens.queries + self._device_tokens.queries + self._organizations.queries

    def _cache_key(self, info: ConnectInfo) -> tuple[str, ...] | None:
        """What a credential is cached under, for the kinds that are cached; None for the others."""
        if info.certificate_serial is not None and info.certificate_cn is not None:
            return None
        username = info.username or ""
        if not username:
            return ("anonymous",) if not info.password and self._allow_anonymous else None
        password = (info.password or b"").decode("utf-8", "replace")
        if username.startswith(API_TOKEN_PREFIX):
            if password != username or not API_TOKEN_PATTERN.match(username):
                return None
            return ("app", self._secrets.hash_token(username))
        if "@" in username or not _UUID.match(username) or not password:
            return None
        return ("device", username, self._secrets.hash_token(password))

    def forget(self, principal_id: str) -> None:
        """Forget the cached credentials of a principal: its next CONNECT is checked against the database."""
        self.cache.forget(principal_id)

    def failure_delay(self, address: str) -> float:
        """Seconds to wait before refusing ``address`` again: 0 for its first failures, then doubling."""
        excess = self._failures.count(address) - self._free_failures
        if excess <= 0 or self._max_delay <= 0:
            return 0.0
        return min(self._max_delay, 0.1 * 2.0 ** min(excess - 1, 16))

    async def _slow_down(self, info: ConnectInfo, refusal: _Refusal) -> None:
        delay = self._refused(info, refusal)
        if delay:
            await asyncio.sleep(delay)

    def _refused(self, info: ConnectInfo, refusal: _Refusal) -> float:
        """Count and log a refusal; the seconds to wait before answering it."""
        address = _address(info)
        self._failures.hit(address)
        self.refused[refusal.reason] += 1
        logger.debug(
            "MQTT authentication refused: client %r from %s on %s: %s",
            info.client_id,
            info.peer,
            info.listener,
            refusal.detail,
        )
        # Jittered over its second half, so a burst of refused CONNECTs is not answered in one burst too.
        return self.failure_delay(address) * (0.5 + random.random() / 2)

    async def _identify(self, info: ConnectInfo, key: tuple[str, ...] | None) -> Principal:
        if info.certificate_serial is not None and info.certificate_cn is not None:
            async with self._database.session() as session:
                return await self._certificate(session, info.certificate_serial, info.certificate_cn)
        username = info.username or ""
        if not username:
            if info.password:
                raise _Refusal("bad_request", "a password without a user name")
            if not self._allow_anonymous:
                raise _Refusal("no_credentials", "no credentials and anonymous access is off")
            return await self._anonymous()
        password = (info.password or b"").decode("utf-8", "replace")
        if username.startswith(API_TOKEN_PREFIX):
            if password != username:
                raise _Refusal("bad_password", "an API token must be given as both user name and password")
            return await self._api_token(key)
        if "@" in username:
            return await self._administrator(username, password, _address(info))
        return await self._device(key)

    async def _administrator(self, email: str, password: str, address: str) -> Principal:
        # Limits first, so a refused attempt costs no query; the user is read in a session of its own,
        # closed before the (slow) password check so that no database connection waits on argon2.
        email = email.strip().lower()
        try:
            self._guard.admit(email, address)
        except RateLimitedError:
            raise _Refusal("rate_limited", "too many password attempts for this account or address") from None
        async with self._database.session() as session:
            user = await session.scalar(select(User).where(User.email == email))
        try:
            with self._guard.checking(address):
                matches = await self._passwords.verify(user.password_hash if user is not None else None, password)
        except UnavailableError as exc:
            raise _Refusal("busy", exc.message, ReasonCode.SERVER_BUSY) from None
        if user is None or not matches:
            raise _Refusal("bad_password", "wrong e-mail or password")
        if not user.is_active or user.role is not UserRole.PLATFORM_ADMIN:
            raise _Refusal("not_allowed", f"user {user.id} is not an active platform administrator")
        self._guard.succeeded(email)
        return Principal(id=f"user:{user.id}", kind="admin", attributes=ADMIN_RULES.to_attributes())

    async def _api_token(self, key: tuple[str, ...] | None) -> Principal:
        # The key is ("app", digest) for every well-formed token given as both user name and password.
        if key is None:
            raise _Refusal("unknown_token", "malformed API token")
        epoch = self.cache.epoch
        return self._api_principal(key, epoch, await self._api_tokens.get(key[1]))

    def _api_principal(self, key: tuple[str, ...], epoch: int, row: tuple[Any, ...] | None) -> Principal:
        """The app a looked-up API token row makes (remembered unless ``epoch`` passed), or a refusal."""
        if row is None:
            raise _Refusal("unknown_token", "unknown API token")
        token_id, revoked_at, expires_at, last_used_at, publish, subscribe, organization_id, short_id = row
        if revoked_at is not None:
            raise _Refusal("revoked", f"API token {token_id} is revoked")
        if expires_at <= utcnow():
            raise _Refusal("expired", f"API token {token_id} expired")
        rules = TopicRules(publish=tuple(publish), subscribe=tuple(subscribe))
        principal = Principal(
            id=f"token:{token_id}",
            kind="app",
            organization_id=organization_id,
            mountpoint=namespace_prefix(short_id),
            attributes={"token_id": token_id, **rules.to_attributes()},
            expires_at=expires_at.timestamp(),
        )
        entry = self.cache.put(key, principal, token_id=token_id, last_used=last_used_at, epoch=epoch)
        self._note_use(MqttApiToken, entry)
        return principal

    async def _device(self, key: tuple[str, ...] | None) -> Principal:
        # The key is ("device", device id, digest) for every device id shaped as one that came with a token.
        if key is None:
            raise _Refusal("unknown_device", "unknown device or missing token")
        epoch = self.cache.epoch
        return self._device_principal(key, epoch, await self._device_tokens.get(key[2]))

    def _device_principal(self, key: tuple[str, ...], epoch: int, row: tuple[Any, ...] | None) -> Principal:
        """The device a looked-up device token row makes (remembered unless ``epoch`` passed), or a refusal."""
        device_id = key[1]
        if row is None or row[1] != device_id:
            raise _Refusal("unknown_token", f"device {device_id}: unknown token")
        token_id, _, revoked_at, expires_at, last_used_at, enabled, organization_id, short_id = row
        if revoked_at is not None:
            raise _Refusal("revoked", f"device {device_id}: token {token_id} is revoked")
        if expires_at is not None and expires_at <= utcnow():
            raise _Refusal("expired", f"device {device_id}: token {token_id} expired")
        if not enabled:
            raise _Refusal("disabled", f"device {device_id} is disabled")
        principal = Principal(
            id=f"device:{device_id}",
            kind="device",
            organization_id=organization_id,
            mountpoint=namespace_prefix(short_id),
            attributes={
                "device_id": device_id,
                "device_token_id": token_id,
                **device_rules(device_id, organization_id).to_attributes(),
            },
            expires_at=expires_at.timestamp() if expires_at is not None else None,
        )
        entry = self.cache.put(key, principal, token_id=token_id, last_used=last_used_at, epoch=epoch)
        self._note_use(DeviceToken, entry)
        return principal

    def _note_use(self, model: TokenModel, entry: CachedCredential) -> None:
        if entry.token_id is None:
            return  # anonymous: no token whose use is recorded
        now = utcnow()
        if self.last_used.due(entry.last_used, now):
            entry.last_used = now
            self.last_used.record(model, entry.token_id, now)

    async def _certificate(self, session: AsyncSession, serial: int, common_name: str) -> Principal:
        row = (
            await session.execute(
                select(ClientCertificate, Organization)
                .join(Organization, Organization.id == ClientCertificate.organization_id)
                .where(ClientCertificate.serial == format(serial, "x"))
            )
        ).one_or_none()
        if row is None:
            raise _Refusal("unknown_certificate", f"certificate {serial:x} was not issued by this hub")
        certificate, organization = row._tuple()
        if certificate.revoked_at is not None:
            raise _Refusal("revoked", f"certificate {serial:x} is revoked")
        if certificate.common_name != common_name:
            raise _Refusal("unknown_certificate", f"certificate {serial:x} does not match its record")
        if certificate.not_after <= utcnow():
            raise _Refusal("expired", f"certificate {serial:x} expired")
        attributes = {"certificate_serial": certificate.serial}
        if certificate.device_id is not None:
            device = await session.get(Device, certificate.device_id)
            if device is None or not device.enabled:
                raise _Refusal("disabled", f"device {certificate.device_id} is disabled")
            rules = device_rules(device.id, organization.id)
            attributes["device_id"] = device.id
        else:
            user = await session.get(User, certificate.user_id) if certificate.user_id else None
            if user is None or not user.is_active:
                raise _Refusal("disabled", f"the user of certificate {serial:x} is disabled")
            rules = user_rules(user.id)
            attributes["user_id"] = user.id
        return Principal(
            id=f"cert:{certificate.serial}",
            kind="certificate",
            organization_id=organization.id,
            mountpoint=mountpoint_of(organization),
            attributes=attributes | rules.to_attributes(),
            expires_at=certificate.not_after.timestamp(),
        )

    async def _anonymous(self) -> Principal:
        organization = await self._organizations.get("")
        if organization is None:
            raise _Refusal("no_credentials", "anonymous access has no default organization")
        organization_id, short_id = organization
        principal = Principal(
            id="anonymous",
            kind="anonymous",
            organization_id=organization_id,
            mountpoint=namespace_prefix(short_id),
            attributes=ANONYMOUS_RULES.to_attributes(),
        )
        self.cache.put(("anonymous",), principal)
        return principal

    async def _fetch_anonymous_organization(
        self, connection: AsyncConnection, keys: list[str]
    ) -> dict[str, tuple[str, str]]:
        # The organization named by `default_organization`, or else the oldest one (the first-run
        # organization, should it have been renamed).
        row = (
            await connection.execute(
                select(Organization.id, Organization.short_id)
                .order_by((Organization.name != self._default_organization), Organization.created_at)
                .limit(1)
            )
        ).one_or_none()
        return {} if row is None else dict.fromkeys(keys, row._tuple())


_API_LOOKUP_COLUMNS = (
    "t.token_hash, t.id, t.revoked_at, t.expires_at, t.last_used_at, t.publish, t.subscribe, o.id, o.short_id"
)
_API_TOKENS_FROM = "FROM mqtt_api_tokens t JOIN organizations o ON o.id = t.organization_id WHERE t.token_hash IN "
_DEVICE_LOOKUP_COLUMNS = (
    "t.token_hash, t.id, d.id, t.revoked_at, t.expires_at, t.last_used_at, d.enabled, o.id, o.short_id"
)
_DEVICE_TOKENS_FROM = (
    "FROM device_tokens t JOIN devices d ON d.id = t.device_id JOIN organizations o ON o.id = d.organization_id"
    " WHERE t.token_hash IN "
)


async def _fetch_api_tokens(connection: AsyncConnection, hashes: list[str]) -> dict[str, tuple[Any, ...]]:
    marks, parameters = in_list(hashes)
    return {
        token_hash: (token_id, utc(revoked), utc(expires), utc(used), json_value(publish), json_value(subscribe), *org)
        for token_hash, token_id, revoked, expires, used, publish, subscribe, *org in await fetch_all(
            connection, _API_LOOKUP_COLUMNS, _API_TOKENS_FROM + marks, parameters
        )
    }


async def _fetch_device_tokens(connection: AsyncConnection, hashes: list[str]) -> dict[str, tuple[Any, ...]]:
    marks, parameters = in_list(hashes)
    return {
        token_hash: (token_id, device_id, utc(revoked), utc(expires), utc(used), bool(enabled), *org)
        for token_hash, token_id, device_id, revoked, expires, used, enabled, *org in await fetch_all(
            connection, _DEVICE_LOOKUP_COLUMNS, _DEVICE_TOKENS_FROM + marks, parameters
        )
    }


def _address(info: ConnectInfo) -> str:
    return info.peer.rsplit(":", 1)[0]


def _refuse_later(answer: asyncio.Future[Principal], refused: AuthenticationRefused) -> None:
    if not answer.done():
        answer.set_exception(refused)


class TopicAuthorizer:
    """Applies the topic rules that :class:`DatabaseAuthenticator` put in each principal, then the operator's.

    Topics arrive as the client sent them (inside its mountpoint); a shared
    subscription's filter arrives without its ``$share/<group>/`` prefix. The operator's rules file
    (:mod:`mqtthub.auth.operator_rules`) can only narrow what the built-in rules allow; the hub swaps
    :attr:`operator_rules` when the file changes.
    """

    def __init__(self, operator_rules: OperatorRules | None = None) -> None:
        self.operator_rules = operator_rules or OperatorRules()

    async def authorize(self, principal: Principal, action: Action, topic: str) -> bool:
        """Whether the principal may publish to, subscribe with, or read retained messages of ``topic``."""
        if action is Action.RETAINED:
            allowed = True  # the subscription that asks was allowed already
        else:
            rules = TopicRules.from_attributes(principal.attributes)
            allowed = rules.may_publish(topic) if action is Action.PUBLISH else rules.may_subscribe(topic)
        return allowed and self.operator_rules.allows(principal, action, topic)
