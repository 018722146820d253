"""The hub's certificate authority: it issues client certificates that the TLS listeners verify.

On first run the CA (an ECDSA P-256 key and a self-signed certificate valid for ten years)
is created in ``data_dir`` as ``mqtthub-ca.pem`` and ``mqtthub-ca.key`` (mode 0600), unless
``ca_cert_file`` and ``ca_key_file`` name an existing one. Client certificates carry the
identity as their common name (a device id, or ``user:<user id>``) and are bundled as
password-protected PKCS#12 for download. Revocation is kept in the database and enforced
when the client sends CONNECT (see :mod:`mqtthub.auth.broker_hooks`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mqtthub.config import Settings
from mqtthub.errors import ConfigurationError

logger = logging.getLogger(__name__)

CA_CERT_NAME = "mqtthub-ca.pem"
CA_KEY_NAME = "mqtthub-ca.key"
_CA_LIFETIME = timedelta(days=3650)
_BACKDATE = timedelta(minutes=5)  # tolerate clients whose clock is a little behind


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate and its private key, fresh from the CA."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def serial_hex(self) -> str:
        """The serial number in lowercase hexadecimal, as stored and as the broker reports it."""
        return format(self.certificate.serial_number, "x")

    def certificate_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        """The private key in unencrypted PKCS#8 PEM (for files the caller protects)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


class CertificateAuthority:
    """Signs client (and, for tests and small setups, server) certificates with the hub's CA key."""

    def __init__(self, certificate: x509.Certificate, private_key: ec.EllipticCurvePrivateKey, cert_file: Path) -> None:
        self.certificate = certificate
        self._key = private_key
        self.cert_file = cert_file
        """PEM file of the CA certificate: what TLS listeners verify client certificates against."""

    @classmethod
    def load_or_create(cls, settings: Settings) -> CertificateAuthority:
        """The CA named in settings, or the one in ``data_dir`` (created there on first use).

        Raises:
            ConfigurationError: only one of ``ca_cert_file``/``ca_key_file`` is set, or they cannot be read.
        """
        if (settings.ca_cert_file is None) != (settings.ca_key_file is None):
            raise ConfigurationError("MQTTHUB_CA_CERT_FILE and MQTTHUB_CA_KEY_FILE must be set together")
        if settings.ca_cert_file is not None and settings.ca_key_file is not None:
            return cls.load(settings.ca_cert_file, settings.ca_key_file)
        cert_file, key_file = settings.data_dir / CA_CERT_NAME, settings.data_dir / CA_KEY_NAME
        if cert_file.exists() and key_file.exists():
            return cls.load(cert_file, key_file)
        return cls.create(cert_file, key_file)

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> CertificateAuthority:
        """Read a CA certificate and its unencrypted EC private key from PEM files.

        Raises:
            ConfigurationError: a file is missing or unreadable, or the key is not an EC key.
        """
        try:
            certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"cannot read the CA from {cert_file} and {key_file}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigurationError(f"{key_file}: the CA key must be an EC key")
        if key.public_key() != certificate.public_key():
            raise ConfigurationError(f"{key_file} is not the key of {cert_file}")
        return cls(certificate, key, cert_file)

    @classmethod
    def create(cls, cert_file: Path, key_file: Path, *, common_name: str = "mqtthub CA") -> CertificateAuthority:
        """Generate a new CA and write it to ``cert_file`` and ``key_file`` (the key with mode 0600)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        cert_file.parent.mkdir(parents=True, exist_ok=True)
        # The certificate first: a crash in between leaves no orphan key to trip over next time.
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        logger.info("created the hub's certificate authority in %s", cert_file.parent)
        return cls(certificate, key, cert_file)

    def certificate_pem(self) -> bytes:
        """The CA certificate in PEM, for clients that verify the hub or the hub's client certificates."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_client_certificate(
        self, common_name: str, *, validity: timedelta, organization: str | None = None
    ) -> IssuedCertificate:
        """A client-authentication certificate for ``common_name`` (the identity the broker sees)."""
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organization))
        return self._issue(x509.Name(attributes), validity, ExtendedKeyUsageOID.CLIENT_AUTH, alternative_names=None)

    def issue_server_certificate(
        self,
        hostnames: tuple[str, ...] = ("localhost",),
        ip_addresses: tuple[str, ...] = ("127.0.0.1",),
        *,
        validity: timedelta = timedelta(days=365),
    ) -> IssuedCertificate:
        """A server certificate for the hub's own TLS listeners (handy for tests and single hosts)."""
        names: list[x509.GeneralName] = [x509.DNSName(host) for host in hostnames]
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else ip_addresses[0])])
        return self._issue(subject, validity, ExtendedKeyUsageOID.SERVER_AUTH, alternative_names=names)

    def _issue(
        self,
        subject: x509.Name,
        validity: timedelta,
        usage: x509.ObjectIdentifier,
        *,
        alternative_names: list[x509.GeneralName] | None,
    ) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if alternative_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        return IssuedCertificate(builder.sign(self._key, hashes.SHA256()), key)

    def pkcs12(self, issued: IssuedCertificate, password: str, *, friendly_name: str) -> bytes:
        """``issued`` with its key and the CA certificate as a PKCS#12 bundle encrypted with ``password``."""
        return pkcs12.serialize_key_and_certificates(
            friendly_name.encode(),
            issued.private_key,
            issued.certificate,
            [self.certificate],
            serialization.BestAvailableEncryption(password.encode()),
        )
