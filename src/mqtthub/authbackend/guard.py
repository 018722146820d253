"""Who may ask the auth backend: callers from the allowed networks that present the shared secret.

The endpoints answer which credentials are good, so they are kept to the brokers: by default only loopback
callers are served (``auth_backend_networks``), and every request must carry the secret
(``auth_backend_secret``) in one of the forms the brokers can send:

- ``Authorization: Bearer <secret>`` (EMQX's configurable request headers);
- HTTP basic authentication with the secret as password, any user name (RabbitMQ's and mosquitto-go-auth's
  HTTP clients send the ``user:secret@`` part of a URL this way; neither can add a header of its own).

A caller from elsewhere gets 403, a missing or wrong secret 401, each with the JSON error body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass

from mqtthub.config import Settings, parse_networks

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not served: a counter name, an HTTP status and a message for the caller."""

    reason: str
    status_code: int
    message: str


class BackendGuard:
    """Checks a request's source address and secret.

    Args:
        secret: The shared secret (compared in constant time).
        networks: The networks callers may come from.
    """

    def __init__(self, secret: str, networks: tuple[Network, ...]) -> None:
        self._secret = secret.encode()
        self._networks = networks

    @classmethod
    def from_settings(cls, settings: Settings) -> BackendGuard | None:
        """The guard of ``auth_backend_secret`` and ``auth_backend_networks``; None while no secret is set."""
        if settings.auth_backend_secret is None:
            return None
        return cls(settings.auth_backend_secret, parse_networks(settings.auth_backend_networks))

    def refusal(self, host: str, authorization: str) -> Refusal | None:
        """None when a request from ``host`` with this ``Authorization`` header may be served, else why not."""
        if not self._allowed_address(host):
            return Refusal("network", 403, "the auth backend does not serve this address")
        if not self._has_secret(authorization):
            return Refusal("secret", 401, "the auth backend requires its shared secret (bearer or basic password)")
        return None

    def _allowed_address(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    def _has_secret(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.encode(), self._secret)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(decoded.partition(b":")[2], self._secret)
        return False
