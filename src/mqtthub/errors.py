"""The one exception root of mqtthub and its documented tree.

::

    MQTTHubError                    root; never raised itself
    ├── ConfigurationError          a setting is invalid or inconsistent (the CLI exits 2)
    ├── StateError                  a resource used in the wrong state (opened twice, used after close)
    ├── ProtocolError               a peer broke the MQTT protocol; carries ``reason_code``
    │   ├── MalformedPacketError    bytes that are not a valid packet (0x81)
    │   └── PacketTooLargeError     a packet above the negotiated maximum (0x95)
    ├── AuthenticationRefused       CONNECT refused by the authenticator; carries ``reason_code``
    ├── NotFoundError               a resource that does not exist (HTTP 404)
    ├── ConflictError               a resource that already exists or clashes (HTTP 409)
    ├── PermissionDeniedError       outside the caller's rights (HTTP 403)
    ├── UnauthenticatedError        no or bad credentials on an API call (HTTP 401)
    ├── ValidationFailedError       input that is well-formed but not acceptable (HTTP 422)
    ├── RateLimitedError            too many requests; carries ``retry_after`` seconds (HTTP 429)
    └── UnavailableError            a dependency (broker, database, remote broker) is down (HTTP 503);
                                    may carry ``retry_after`` seconds

The HTTP layer maps each class to a status code in one place (``mqtthub.web.errors``);
the broker maps ``ProtocolError`` and ``AuthenticationRefused`` to MQTT reason codes.
"""

from __future__ import annotations


class MQTTHubError(Exception):
    """Root of every exception mqtthub raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(MQTTHubError):
    """A setting is invalid or settings contradict each other."""

    code = "configuration_error"


class StateError(MQTTHubError):
    """A long-lived resource was used in a state that does not allow it."""

    code = "invalid_state"


class ProtocolError(MQTTHubError):
    """A peer broke the MQTT protocol. ``reason_code`` is the MQTT 5.0 reason code to send.

    ``connack_level`` is set for a refused CONNECT that deserves a CONNACK before the close: the protocol
    level whose CONNACK layout the refusal is encoded in (4 for the 3.1.1 form, 5 for the 5.0 form).
    """

    code = "protocol_error"

    def __init__(self, message: str, *, reason_code: int = 0x82, connack_level: int | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.connack_level = connack_level


class MalformedPacketError(ProtocolError):
    """Bytes that cannot be decoded as an MQTT control packet [MQTT-1.5]."""

    code = "malformed_packet"

    def __init__(self, message: str, *, reason_code: int = 0x81) -> None:
        super().__init__(message, reason_code=reason_code)


class PacketTooLargeError(ProtocolError):
    """A packet larger than the maximum packet size in force [MQTT-3.1.2-24]."""

    code = "packet_too_large"

    def __init__(self, message: str, *, reason_code: int = 0x95) -> None:
        super().__init__(message, reason_code=reason_code)


class AuthenticationRefused(MQTTHubError):
    """The authenticator refused a CONNECT. ``reason_code`` is the MQTT 5.0 CONNACK reason code.

    The broker translates it to the 3.1.1 return code for 3.1.1 clients
    (0x86/0x87 → 5 "not authorized", 0x85 → 2, 0x88/0x89 → 3).
    """

    code = "authentication_refused"

    def __init__(self, message: str, *, reason_code: int = 0x86) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class NotFoundError(MQTTHubError):
    """The resource does not exist, or is not visible to the caller."""

    status_code = 404
    code = "not_found"


class ConflictError(MQTTHubError):
    """The resource already exists or the change clashes with the current state."""

    status_code = 409
    code = "conflict"


class PermissionDeniedError(MQTTHubError):
    """The caller is authenticated but the action is outside its rights."""

    status_code = 403
    code = "forbidden"


class UnauthenticatedError(MQTTHubError):
    """Credentials are missing, wrong, expired or revoked."""

    status_code = 401
    code = "unauthorized"


class ValidationFailedError(MQTTHubError):
    """Input is well-formed but not acceptable. ``field`` names the offending field, if one."""

    status_code = 422
    code = "validation_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimitedError(MQTTHubError):
    """Too many requests from one caller; retry after ``retry_after`` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(MQTTHubError):
    """A dependency the request needs (broker, database, remote broker) is unavailable.

    ``retry_after`` (seconds), when given, becomes the HTTP ``Retry-After`` header.
    """

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
