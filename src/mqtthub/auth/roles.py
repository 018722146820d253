"""Who may do what over HTTP: the matrix of roles and operations, every route's operation, and its enforcement.

Every HTTP and WebSocket route of the API names one :class:`Operation`; :data:`MATRIX` says which
roles may perform each operation. :func:`enforce_role` runs before every route (an application-wide
dependency, so before the body is even read) and refuses a caller whose role is not allowed with 403.
A route missing from :data:`ROUTES` is refused to everyone: forgetting to declare a policy fails
closed, and a test walks every route of the application to catch it.

The role is only a first gate. The route itself still authenticates the credential (401 when it is
missing or invalid) and confines the caller to its organization and, for an API token, to its topic
filters. The README's matrix is generated from :func:`matrix_table`.

The web console's routes (``/ui``) are declared here too and gated the same way; their credential is the
session cookie (:mod:`mqtthub.auth.cookie`), which :func:`enforce_role` reads when a request carries no
header credential.
"""

from __future__ import annotations

import enum

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from mqtthub.auth.cookie import session_cookie
from mqtthub.auth.credentials import API_TOKEN_PREFIX, DEVICE_TOKEN_PREFIX
from mqtthub.auth.jwt import verify_session_token
from mqtthub.errors import PermissionDeniedError, UnauthenticatedError
from mqtthub.models import User, UserRole
from mqtthub.web.state import app_state


class Role(enum.Enum):
    """The kinds of caller the API tells apart."""

    PLATFORM_ADMIN = "platform admin"
    ORG_ADMIN = "org admin"
    ORG_MEMBER = "org member"
    API_TOKEN = "API token"  # noqa: S105 (a role name, not a secret)
    DEVICE = "device"


class Operation(enum.Enum):
    """What a route does, as the matrix names it (the value is the README's wording)."""

    PUBLIC = "service information, health, documentation, login, one-time certificate download"
    MANAGE_PLATFORM = (
        "create, rename and delete organizations; hub-wide telemetry statistics; every connected client of the "
        "hub (list, disconnect)"
    )
    READ = (
        "read its organization: organizations, users, devices and their status, history, alerts, rejected "
        "messages, commands, telemetry definitions, products, integration configuration, status and subscriptions, "
        "e-mail templates, connected clients and their subscriptions, retained messages; the broker's figures"
    )
    ADMINISTER = (
        "manage its organization: users, devices, device tokens, MQTT API tokens (listing included), "
        "certificates, telemetry definitions, products, integrations (configuration, test, reconnect, "
        "subscriptions), e-mail templates, connected clients (disconnect), retained messages (clear)"
    )
    OWN_CERTIFICATE = "a client certificate for oneself (`POST /api/v1/auth/mqtt-certificate`)"
    COMMAND = "send device commands and organization broadcasts"
    PUBLISH = "publish through the messaging API (`POST /publish`; an API token within its publish filters)"
    RECORD_SUBSCRIPTIONS = "record and remove messaging subscriptions (`POST /subscribe`, `DELETE /subscribe/…`)"
    READ_MESSAGES = (
        "read messages, topics and statistics, and the live feeds (`GET /messages`, `/topics`, `/stats`, "
        "`WS /ws`, `WS /api/v1/stream`; an API token within its subscribe filters)"
    )
    DEVICE_REPORT = "report as a device over HTTP (datastream, status, telemetry, command replies)"


_USERS = frozenset({Role.PLATFORM_ADMIN, Role.ORG_ADMIN, Role.ORG_MEMBER})
_ADMINS = frozenset({Role.PLATFORM_ADMIN, Role.ORG_ADMIN})

MATRIX: dict[Operation, frozenset[Role]] = {
    Operation.PUBLIC: frozenset(Role),
    Operation.MANAGE_PLATFORM: frozenset({Role.PLATFORM_ADMIN}),
    Operation.READ: _USERS,
    Operation.ADMINISTER: _ADMINS,
    Operation.OWN_CERTIFICATE: _USERS,
    Operation.COMMAND: _ADMINS,
    Operation.PUBLISH: _ADMINS | {Role.API_TOKEN},
    Operation.RECORD_SUBSCRIPTIONS: _ADMINS | {Role.API_TOKEN},
    Operation.READ_MESSAGES: _USERS | {Role.API_TOKEN},
    Operation.DEVICE_REPORT: frozenset({Role.DEVICE}),
}
"""Which roles may perform each operation (members read only)."""

_O = "/api/v1/organizations/{org_id}"
_D = "/api/v1/devices/{device_id}"
_P = "/api/v1/products/{product_id}"
_C = _P + "/mqtt-config"
_U = "/ui/orgs/{org_id}"
_UP = _U + "/products/{product_id}"
_US = _UP + "/subscriptions/{subscription_id}"

ROUTES: dict[tuple[str, str], Operation] = {
    # service
    ("GET", "/"): Operation.PUBLIC,
    ("GET", "/health"): Operation.PUBLIC,
    ("GET", "/api/v1/health"): Operation.PUBLIC,
    ("POST", "/api/v1/auth/login"): Operation.PUBLIC,
    ("GET", "/api/v1/certificates/download/{secret}"): Operation.PUBLIC,
    # organizations and users
    ("GET", "/api/v1/organizations"): Operation.READ,
    ("POST", "/api/v1/organizations"): Operation.MANAGE_PLATFORM,
    ("GET", _O): Operation.READ,
    ("PATCH", _O): Operation.MANAGE_PLATFORM,
    ("DELETE", _O): Operation.MANAGE_PLATFORM,
    ("GET", _O + "/users"): Operation.READ,
    ("POST", _O + "/users"): Operation.ADMINISTER,
    ("PATCH", _O + "/users/{user_id}"): Operation.ADMINISTER,
    ("DELETE", _O + "/users/{user_id}"): Operation.ADMINISTER,
    # broker: figures, connected clients, retained messages
    ("GET", "/api/v1/broker"): Operation.READ,
    ("GET", "/api/v1/broker/clients"): Operation.MANAGE_PLATFORM,
    ("DELETE", "/api/v1/broker/clients/{client_id}"): Operation.MANAGE_PLATFORM,
    ("GET", _O + "/clients"): Operation.READ,
    ("DELETE", _O + "/clients/{client_id}"): Operation.ADMINISTER,
    ("GET", _O + "/retained"): Operation.READ,
    ("DELETE", _O + "/retained/{topic}"): Operation.ADMINISTER,
    # devices, tokens, certificates
    ("GET", _O + "/devices"): Operation.READ,
    ("POST", _O + "/devices"): Operation.ADMINISTER,
    ("GET", _O + "/devices/{device_id}"): Operation.READ,
    ("PATCH", _O + "/devices/{device_id}"): Operation.ADMINISTER,
    ("DELETE", _O + "/devices/{device_id}"): Operation.ADMINISTER,
    ("GET", _O + "/devices/{device_id}/tokens"): Operation.ADMINISTER,
    ("POST", _O + "/devices/{device_id}/tokens"): Operation.ADMINISTER,
    ("DELETE", _O + "/devices/{device_id}/tokens/{token_id}"): Operation.ADMINISTER,
    ("GET", _O + "/mqtt-tokens"): Operation.ADMINISTER,
    ("POST", _O + "/mqtt-tokens"): Operation.ADMINISTER,
    ("GET", _O + "/mqtt-tokens/{token_id}"): Operation.ADMINISTER,
    ("DELETE", _O + "/mqtt-tokens/{token_id}"): Operation.ADMINISTER,
    ("POST", "/api/v1/auth/mqtt-certificate"): Operation.OWN_CERTIFICATE,
    ("POST", _O + "/devices/{device_id}/certificate"): Operation.ADMINISTER,
    ("GET", _O + "/certificates"): Operation.ADMINISTER,
    ("DELETE", _O + "/certificates/{serial}"): Operation.ADMINISTER,
    # messaging API
    ("POST", "/publish"): Operation.PUBLISH,
    ("POST", "/subscribe"): Operation.RECORD_SUBSCRIPTIONS,
    ("DELETE", "/subscribe/{topic}"): Operation.RECORD_SUBSCRIPTIONS,
    ("GET", "/messages"): Operation.READ_MESSAGES,
    ("GET", "/topics"): Operation.READ_MESSAGES,
    ("GET", "/stats"): Operation.READ_MESSAGES,
    ("WS", "/ws"): Operation.READ_MESSAGES,
    ("WS", "/api/v1/stream"): Operation.READ_MESSAGES,
    # products and integrations
    ("GET", "/api/v1/products"): Operation.READ,
    ("POST", "/api/v1/products"): Operation.ADMINISTER,
    ("GET", _P): Operation.READ,
    ("PATCH", _P): Operation.ADMINISTER,
    ("DELETE", _P): Operation.ADMINISTER,
    ("GET", _C): Operation.READ,
    ("PUT", _C): Operation.ADMINISTER,
    ("DELETE", _C): Operation.ADMINISTER,
    ("POST", _C + "/test"): Operation.ADMINISTER,
    ("POST", _C + "/reconnect"): Operation.ADMINISTER,
    ("GET", _C + "/status"): Operation.READ,
    ("GET", _C + "/failures"): Operation.READ,
    ("GET", _C + "/subscriptions"): Operation.READ,
    ("POST", _C + "/subscriptions"): Operation.ADMINISTER,
    ("PUT", _C + "/subscriptions/{subscription_id}"): Operation.ADMINISTER,
    ("DELETE", _C + "/subscriptions/{subscription_id}"): Operation.ADMINISTER,
    ("GET", _P + "/email-templates"): Operation.READ,
    ("PUT", _P + "/email-templates/{name}"): Operation.ADMINISTER,
    ("DELETE", _P + "/email-templates/{name}"): Operation.ADMINISTER,
    # telemetry
    ("POST", _D + "/datastream"): Operation.DEVICE_REPORT,
    ("POST", _D + "/status"): Operation.DEVICE_REPORT,
    ("POST", _D + "/telemetry/{sensor}"): Operation.DEVICE_REPORT,
    ("POST", _D + "/commands/reply"): Operation.DEVICE_REPORT,
    ("GET", _D + "/status"): Operation.READ,
    ("GET", _D + "/datastreams"): Operation.READ,
    ("GET", _D + "/datastreams/{sensor}"): Operation.READ,
    ("GET", _D + "/telemetry-definitions"): Operation.READ,
    ("POST", _D + "/telemetry-definitions"): Operation.ADMINISTER,
    ("GET", _D + "/telemetry-definitions/{definition_id}"): Operation.READ,
    ("PATCH", _D + "/telemetry-definitions/{definition_id}"): Operation.ADMINISTER,
    ("DELETE", _D + "/telemetry-definitions/{definition_id}"): Operation.ADMINISTER,
    ("GET", _D + "/alerts"): Operation.READ,
    ("GET", _O + "/alerts"): Operation.READ,
    ("GET", _O + "/rejected-messages"): Operation.READ,
    ("POST", _D + "/commands"): Operation.COMMAND,
    ("GET", _D + "/commands"): Operation.READ,
    ("GET", _D + "/commands/{command_id}"): Operation.READ,
    ("GET", "/api/v1/commands/{command_id}"): Operation.READ,
    ("POST", _O + "/broadcast"): Operation.COMMAND,
    ("GET", "/api/v1/telemetry/stats"): Operation.MANAGE_PLATFORM,
    # web console (the session cookie is its credential; see mqtthub.console)
    ("GET", "/ui"): Operation.PUBLIC,
    ("GET", "/ui/signin"): Operation.PUBLIC,
    ("POST", "/ui/signin"): Operation.PUBLIC,
    ("POST", "/ui/signout"): Operation.PUBLIC,
    ("GET", "/ui/orgs"): Operation.READ,
    ("GET", _U): Operation.READ,
    ("GET", _U + "/figures"): Operation.READ,
    ("GET", _U + "/devices"): Operation.READ,
    ("POST", _U + "/devices"): Operation.ADMINISTER,
    ("GET", _U + "/devices/statuses"): Operation.READ,
    ("GET", _U + "/devices/{device_id}"): Operation.READ,
    ("POST", _U + "/devices/{device_id}"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/delete"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/tokens"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/tokens/{token_id}/revoke"): Operation.ADMINISTER,
    ("GET", _U + "/devices/{device_id}/commands"): Operation.READ,
    ("POST", _U + "/devices/{device_id}/commands"): Operation.COMMAND,
    ("GET", _U + "/devices/{device_id}/records"): Operation.READ,
    ("GET", _U + "/devices/{device_id}/charts"): Operation.READ,
    ("GET", _U + "/devices/{device_id}/definitions"): Operation.READ,
    ("POST", _U + "/devices/{device_id}/definitions"): Operation.ADMINISTER,
    ("GET", _U + "/devices/{device_id}/definitions/{definition_id}"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/definitions/{definition_id}"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/definitions/{definition_id}/delete"): Operation.ADMINISTER,
    ("GET", _U + "/devices/{device_id}/certificates"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/certificates"): Operation.ADMINISTER,
    ("POST", _U + "/devices/{device_id}/certificates/{serial}/revoke"): Operation.ADMINISTER,
    ("GET", _U + "/mqtt-tokens"): Operation.ADMINISTER,
    ("POST", _U + "/mqtt-tokens"): Operation.ADMINISTER,
    ("POST", _U + "/mqtt-tokens/{token_id}/revoke"): Operation.ADMINISTER,
    ("GET", _U + "/broker"): Operation.READ,
    ("GET", _U + "/broker/figures"): Operation.READ,
    ("POST", _U + "/broker/kick"): Operation.ADMINISTER,
    ("GET", _U + "/users"): Operation.READ,
    ("POST", _U + "/users"): Operation.ADMINISTER,
    ("POST", _U + "/users/{user_id}/role"): Operation.ADMINISTER,
    ("POST", _U + "/users/{user_id}/remove"): Operation.ADMINISTER,
    ("GET", _U + "/organizations"): Operation.MANAGE_PLATFORM,
    ("POST", _U + "/organizations"): Operation.MANAGE_PLATFORM,
    ("POST", _U + "/organizations/{organization_id}/delete"): Operation.MANAGE_PLATFORM,
    ("GET", _U + "/live"): Operation.READ_MESSAGES,
    ("POST", _U + "/live/publish"): Operation.PUBLISH,
    ("GET", _U + "/live/retained"): Operation.READ,
    ("POST", _U + "/live/retained/clear"): Operation.ADMINISTER,
    ("GET", _U + "/products"): Operation.READ,
    ("POST", _U + "/products"): Operation.ADMINISTER,
    ("GET", _UP): Operation.READ,
    ("POST", _UP): Operation.ADMINISTER,
    ("POST", _UP + "/delete"): Operation.ADMINISTER,
    ("POST", _UP + "/mqtt-config"): Operation.ADMINISTER,
    ("POST", _UP + "/mqtt-config/delete"): Operation.ADMINISTER,
    ("POST", _UP + "/mqtt-config/test"): Operation.ADMINISTER,
    ("GET", _UP + "/mqtt-config/status"): Operation.READ,
    ("POST", _UP + "/mqtt-config/reconnect"): Operation.ADMINISTER,
    ("POST", _UP + "/subscriptions"): Operation.ADMINISTER,
    ("GET", _US): Operation.READ,
    ("POST", _US): Operation.ADMINISTER,
    ("POST", _US + "/delete"): Operation.ADMINISTER,
    ("POST", _US + "/actions"): Operation.ADMINISTER,
    ("POST", _US + "/actions/{action_index}"): Operation.ADMINISTER,
    ("POST", _US + "/actions/{action_index}/delete"): Operation.ADMINISTER,
    ("POST", _US + "/actions/{action_index}/up"): Operation.ADMINISTER,
    ("POST", _UP + "/email-templates"): Operation.ADMINISTER,
    ("POST", _UP + "/email-templates/{name}/delete"): Operation.ADMINISTER,
}
"""The operation of every API route, by method (``WS`` for WebSocket routes) and path template."""

_USER_ROLES = {
    UserRole.PLATFORM_ADMIN: Role.PLATFORM_ADMIN,
    UserRole.ORG_ADMIN: Role.ORG_ADMIN,
    UserRole.ORG_MEMBER: Role.ORG_MEMBER,
}


def role_of(user_role: UserRole) -> Role:
    """The role a user of ``user_role`` has in the matrix."""
    return _USER_ROLES[user_role]


def permits(user_role: UserRole, operation: Operation) -> bool:
    """Whether a user of ``user_role`` may perform ``operation`` (the web console shows only what is allowed)."""
    return _USER_ROLES[user_role] in MATRIX[operation]


def operation_of(connection: HTTPConnection) -> Operation | None:
    """The declared operation of the route serving ``connection`` (None when it has none)."""
    route = connection.scope.get("route")
    path = getattr(route, "path_format", None)
    method = "WS" if connection.scope["type"] == "websocket" else connection.scope.get("method", "")
    return ROUTES.get((method, path)) if isinstance(path, str) else None


async def _role(connection: HTTPConnection, token: str, session: AsyncSession) -> Role | None:
    if token.startswith(API_TOKEN_PREFIX):
        return Role.API_TOKEN
    if token.startswith(DEVICE_TOKEN_PREFIX):
        return Role.DEVICE
    try:
        claims = verify_session_token(app_state(connection).secrets.signing_key, token)
    except UnauthenticatedError:
        return None  # the route's own authentication answers 401
    # The role as it is now, not as it was when the token was issued.
    user = await session.get(User, claims.user_id)
    return role_of(user.role) if user is not None and user.is_active else None


def _token(connection: HTTPConnection) -> str:
    # Read by hand rather than with fastapi.security, which would list every route as secured in OpenAPI.
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if api_key := connection.headers.get("x-api-key"):
        return api_key
    if connection.scope["type"] == "websocket" and (
        query := connection.query_params.get("token") or connection.query_params.get("api_key")
    ):
        return query
    return session_cookie(connection) or ""


async def enforce_role(connection: HTTPConnection) -> None:
    """Refuse (403) a caller whose role may not perform the route's operation; see the module docstring.

    A request without a credential, or with one that does not verify, passes on to the route, whose
    own authentication answers 401.

    Raises:
        PermissionDeniedError: the route declares no operation, or the caller's role may not perform it.
    """
    operation = operation_of(connection)
    if operation is None:
        raise PermissionDeniedError("this route has no access policy")
    allowed = MATRIX[operation]
    if operation is Operation.PUBLIC:
        return
    token = _token(connection)
    if not token:
        return
    if token.count(".") == 2 and allowed >= _USERS:
        return  # every user role may: no need to look the user up
    async with app_state(connection).database.session() as session:
        role = await _role(connection, token, session)
    if role is not None and role not in allowed:
        raise PermissionDeniedError(f"a caller with the role {role.value!r} may not {_verb(operation)}")


def _verb(operation: Operation) -> str:
    return operation.name.lower().replace("_", " ")


def matrix_table() -> str:
    """The README's matrix of roles and operations in Markdown, generated from :data:`MATRIX`."""
    roles = list(Role)
    rows = [
        "| operation | " + " | ".join(role.value for role in roles) + " |",
        "| --- |" + " --- |" * len(roles),
    ]
    for operation, allowed in MATRIX.items():
        marks = " | ".join("yes" if role in allowed else "—" for role in roles)
        rows.append(f"| {operation.value} | {marks} |")
    return "\n".join(rows)
