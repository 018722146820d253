"""TLS contexts for MQTT clients, built from PEM or PKCS#12 material held in memory.

Python's :mod:`ssl` loads a client certificate only from a file. The key therefore goes
through one short-lived file: created with mode 0600 in a private directory, holding the
key *encrypted* under a random one-time passphrase, and removed as soon as
:meth:`ssl.SSLContext.load_cert_chain` has read it, so key material never stays on disk.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


class CertificateError(ValueError):
    """Certificate or key material that cannot be loaded (wrong password, not PEM/PKCS#12, mismatch)."""


@dataclass(frozen=True, slots=True, repr=False)
class TLSOptions:
    """What a TLS connection to a broker needs. ``repr`` never shows key material.

    Attributes:
        verify_cert: Check the broker's certificate chain and host name.
        ca_pem: Extra trust anchors (PEM); the system store is used when unset.
        client_cert_pem: Client certificate chain (PEM), with ``client_key_pem``.
        client_key_pem: Private key of ``client_cert_pem`` (PEM, optionally encrypted with ``key_password``).
        pkcs12: Client certificate and key as PKCS#12 bytes, instead of the PEM pair.
        pkcs12_password: Password of ``pkcs12``.
        key_password: Password of an encrypted ``client_key_pem``.
        alpn: ALPN protocol names (AWS IoT Core on port 443 needs ``["x-amzn-mqtt-ca"]``).
    """

    verify_cert: bool = True
    ca_pem: str | None = None
    client_cert_pem: str | None = None
    client_key_pem: str | None = None
    pkcs12: bytes | None = None
    pkcs12_password: str | None = None
    key_password: str | None = None
    alpn: Sequence[str] = ()

    def __repr__(self) -> str:
        client = "pkcs12" if self.pkcs12 else "pem" if self.client_cert_pem else "none"
        return f"TLSOptions(verify_cert={self.verify_cert}, ca={self.ca_pem is not None}, client_cert={client})"


def create_ssl_context(options: TLSOptions) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for a client, as ``options`` describe.

    Raises:
        CertificateError: the CA, certificate, key or PKCS#12 cannot be loaded.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if options.ca_pem:
        try:
            context.load_verify_locations(cadata=options.ca_pem)
        except ssl.SSLError as exc:
            raise CertificateError(f"the CA certificate cannot be loaded: {exc.reason or exc}") from None
    if not options.verify_cert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.alpn:
        context.set_alpn_protocols(list(options.alpn))
    chain_and_key = _client_material(options)
    if chain_and_key is not None:
        _load_client_certificate(context, *chain_and_key)
    return context


def _client_material(options: TLSOptions) -> tuple[bytes, bytes] | None:
    """The client certificate chain (PEM) and its key re-encrypted for the one-time file, or None."""
    one_time = secrets.token_bytes(32).hex().encode()
    encryption = serialization.BestAvailableEncryption(one_time)
    if options.pkcs12 is not None:
        password = options.pkcs12_password.encode() if options.pkcs12_password else None
        try:
            key, certificate, extra = pkcs12.load_key_and_certificates(options.pkcs12, password)
        except ValueError:
            raise CertificateError("the PKCS#12 bundle cannot be opened: wrong password or not PKCS#12") from None
        if key is None or certificate is None:
            raise CertificateError("the PKCS#12 bundle holds no certificate with its private key")
        chain = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in [certificate, *extra])
    elif options.client_cert_pem is not None:
        if options.client_key_pem is None:
            raise CertificateError("a client certificate needs its private key")
        try:
            certificates = x509.load_pem_x509_certificates(options.client_cert_pem.encode())
            key_password = options.key_password.encode() if options.key_password else None
            key = serialization.load_pem_private_key(options.client_key_pem.encode(), key_password)
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"the client certificate or key cannot be loaded: {exc}") from None
        chain = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)
    else:
        return None
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return chain + key_pem, one_time


def _load_client_certificate(context: ssl.SSLContext, bundle: bytes, passphrase: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="mqtthub-tls-") as directory:  # created 0700
        path = os.path.join(directory, "client.pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(bundle)
            context.load_cert_chain(path, password=passphrase)
        except ssl.SSLError as exc:
            raise CertificateError(f"the client certificate does not match its key: {exc.reason or exc}") from None
        finally:
            if os.path.exists(path):
                os.unlink(path)
