"""The hub's CA: first-run creation, reloading, issued certificates, PKCS#12 bundles."""

from __future__ import annotations

import ssl
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mqtthub.auth.ca import CA_CERT_NAME, CA_KEY_NAME, CertificateAuthority
from mqtthub.config import Settings
from mqtthub.errors import ConfigurationError


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **overrides)  # type: ignore[arg-type]


def test_created_once_in_data_dir_with_a_private_key_file(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(settings(tmp_path))
    assert first.cert_file == tmp_path / CA_CERT_NAME
    assert stat.S_IMODE((tmp_path / CA_KEY_NAME).stat().st_mode) == 0o600
    again = CertificateAuthority.load_or_create(settings(tmp_path))
    assert again.certificate == first.certificate
    constraints = first.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca


def test_configured_files_must_come_in_pairs_and_match(tmp_path: Path) -> None:
    one = CertificateAuthority.create(tmp_path / "a.pem", tmp_path / "a.key")
    CertificateAuthority.create(tmp_path / "b.pem", tmp_path / "b.key")
    loaded = CertificateAuthority.load_or_create(
        settings(tmp_path / "elsewhere", ca_cert_file=tmp_path / "a.pem", ca_key_file=tmp_path / "a.key")
    )
    assert loaded.certificate == one.certificate
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(ConfigurationError, match="together"):
        CertificateAuthority.load_or_create(settings(tmp_path, ca_cert_file=tmp_path / "a.pem"))
    with pytest.raises(ConfigurationError, match="not the key"):
        CertificateAuthority.load(tmp_path / "a.pem", tmp_path / "b.key")
    with pytest.raises(ConfigurationError, match="cannot read"):
        CertificateAuthority.load(tmp_path / "missing.pem", tmp_path / "a.key")


def test_client_certificate_names_the_identity_and_verifies_against_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(settings(tmp_path))
    issued = ca.issue_client_certificate("device-1", validity=timedelta(days=2), organization="acme0001")
    certificate = issued.certificate
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "device-1"
    assert certificate.issuer == ca.certificate.subject
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert int(issued.serial_hex, 16) == certificate.serial_number
    certificate.verify_directly_issued_by(ca.certificate)
    other = CertificateAuthority.create(tmp_path / "o.pem", tmp_path / "o.key")
    # Same subject name, other key: the signature does not verify.
    with pytest.raises(InvalidSignature):
        certificate.verify_directly_issued_by(other.certificate)


def test_pkcs12_opens_only_with_its_password(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(settings(tmp_path))
    issued = ca.issue_client_certificate("user:1", validity=timedelta(days=1))
    bundle = ca.pkcs12(issued, "s3cret-password", friendly_name="user:1")
    key, certificate, extra = pkcs12.load_key_and_certificates(bundle, b"s3cret-password")
    assert certificate == issued.certificate
    assert key is not None
    assert extra == [ca.certificate]
    with pytest.raises(ValueError, match="password"):
        pkcs12.load_key_and_certificates(bundle, b"wrong")


def test_server_certificate_works_in_a_real_tls_context(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(settings(tmp_path))
    server = ca.issue_server_certificate()
    (tmp_path / "server.pem").write_bytes(server.certificate_pem())
    (tmp_path / "server.key").write_bytes(server.private_key_pem())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.load_verify_locations(cafile=str(ca.cert_file))
    names = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
