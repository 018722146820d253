"""TLS for test hubs: a server certificate from the hub's own CA, and client contexts from its PKCS#12 bundles."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mqtthub.auth.ca import CA_CERT_NAME, CertificateAuthority
from mqtthub.config import Settings


def tls_overrides(data_dir: Path) -> dict[str, Any]:
    """Settings for TLS and WSS listeners: the hub's CA is created in ``data_dir`` ahead of the hub, so a
    server certificate signed by it can be configured; clients verify the hub with ``data_dir/mqtthub-ca.pem``."""
    ca = CertificateAuthority.load_or_create(Settings(_env_file=None, data_dir=data_dir))
    server = ca.issue_server_certificate(("localhost",), ("127.0.0.1",))
    (data_dir / "server.pem").write_bytes(server.certificate_pem())
    (data_dir / "server.key").write_bytes(server.private_key_pem())
    return {"tls_cert_file": data_dir / "server.pem", "tls_key_file": data_dir / "server.key"}


def certificate_tls(bundle: bytes, password: str, data_dir: Path, name: str = "client") -> ssl.SSLContext:
    """A TLS client context presenting the certificate of a PKCS#12 bundle, trusting the hub's CA in ``data_dir``."""
    key, certificate, _ = pkcs12.load_key_and_certificates(bundle, password.encode())
    assert key is not None
    assert certificate is not None
    (data_dir / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (data_dir / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls = ssl.create_default_context(cafile=str(data_dir / CA_CERT_NAME))
    tls.load_cert_chain(data_dir / f"{name}.pem", data_dir / f"{name}.key")
    return tls
