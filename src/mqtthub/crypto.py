"""Keys and secrets: the hub's secret key, token hashing, encryption of secrets the hub must replay.

- Tokens (device tokens, API tokens) are stored only as HMAC-SHA256 digests keyed with
  the hub's secret key and looked up by digest; the plaintext is shown once.
- Secrets the hub must send again (integration passwords, private keys) are encrypted
  with Fernet under a key derived from the same secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from mqtthub.errors import ConfigurationError

logger = logging.getLogger(__name__)

SECRET_FILE_NAME = "mqtthub.secret"  # noqa: S105 (a file name, not a secret)


def load_secret_key(configured: str | None, data_dir: Path) -> str:
    """Return the configured key, or the one kept in ``data_dir``.

    Raises:
        ConfigurationError: neither is there (tokens hashed under another key would not match), or it is too short.
    """
    if configured:
        return configured
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        raise ConfigurationError(
            f"no secret key at {path.resolve()}; set MQTTHUB_DATA_DIR (or MQTTHUB_SECRET_KEY) to the hub's"
        )
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise ConfigurationError(f"{path}: the secret key must be at least 32 characters")
    return key


def load_or_create_secret_key(configured: str | None, data_dir: Path) -> str:
    """Return the configured key, or the one kept in ``data_dir`` (created with mode 0600 on first use)."""
    if configured or (data_dir / SECRET_FILE_NAME).exists():
        return load_secret_key(configured, data_dir)
    path = data_dir / SECRET_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    logger.info("generated a new secret key in %s", path)
    return key


class SecretBox:
    """Hashes tokens and encrypts replayable secrets under the hub's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._hmac_key = hashlib.sha256(b"mqtthub-token-hash:" + secret_key.encode()).digest()
        fernet_key = hashlib.sha256(b"mqtthub-fernet:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(fernet_key))
        self.signing_key = hashlib.sha256(b"mqtthub-jwt:" + secret_key.encode()).hexdigest()

    def hash_token(self, token: str) -> str:
        """The stored form of a token: hex HMAC-SHA256, safe to index and compare."""
        return hmac.new(self._hmac_key, token.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a secret for storage."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt a stored secret.

        Raises:
            ConfigurationError: the secret key changed since it was stored.
        """
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ConfigurationError("a stored secret cannot be decrypted: was the secret key changed?") from None
