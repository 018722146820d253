"""The shapes of the secrets mqtthub hands out, and the harmless hints kept of them.

- MQTT API token: ``mqh_mqtt_<organization short id>_<32 random letters and digits>``, e.g.
  ``mqh_mqtt_acme4k2p_fPuLMEWonUFAfwctwteXoNlKcu84sqgt`` — the prefix tells a scanner what
  leaked and the short id which organization to warn.
- Device token: ``mqh_dev_<40 random letters and digits>``.
- PKCS#12 download link: 43 URL-safe random characters.

All of them carry at least 190 bits of randomness and are stored only as HMAC digests.
"""

from __future__ import annotations

import re
import secrets
import string

API_TOKEN_PREFIX = "mqh_mqtt_"  # noqa: S105 (a visible prefix, not a secret)
DEVICE_TOKEN_PREFIX = "mqh_dev_"  # noqa: S105 (a visible prefix, not a secret)
_ALPHABET = string.ascii_letters + string.digits
API_TOKEN_PATTERN = re.compile(r"^mqh_mqtt_[a-z0-9]{6,10}_[A-Za-z0-9]{32}$")


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_api_token(organization_short_id: str) -> str:
    """A fresh MQTT API token of the organization."""
    return f"{API_TOKEN_PREFIX}{organization_short_id}_{_random(32)}"


def new_device_token() -> str:
    """A fresh device token."""
    return DEVICE_TOKEN_PREFIX + _random(40)


def new_download_secret() -> str:
    """The secret part of a one-time download URL."""
    return secrets.token_urlsafe(32)


def token_hint(token: str) -> str:
    """The token's prefix and first four random characters, safe to show and log."""
    return token[: token.rfind("_") + 5] + "…"
