"""A real Mosquitto for the integration tests: a test CA, four listeners on free ports, start/stop by PID."""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import shutil
import socket
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MOSQUITTO = "/usr/sbin/mosquitto"
USERNAME = "bre"
PASSWORD = "s3cret-pass"
P12_PASSWORD = "p12-pass"


def mosquitto_available() -> bool:
    """True when Mosquitto and ``mosquitto_passwd`` are installed."""
    return Path(MOSQUITTO).exists() and shutil.which("mosquitto_passwd") is not None


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free right now on 127.0.0.1 (Mosquitto cannot report a port it picked itself).

    The sockets are held until all are bound: asked one after the other, port 0 can give the same port twice.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class Certificates:
    """A CA, a server certificate for 127.0.0.1/localhost, and a client certificate (PEM and PKCS#12)."""

    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str
    client_p12: bytes
    other_ca_pem: str

    @classmethod
    def generate(cls) -> Certificates:
        """Make fresh keys and certificates valid for a day."""
        now = datetime.datetime.now(datetime.UTC)

        def certificate(
            subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey
        ) -> x509.CertificateBuilder:
            return (
                x509.CertificateBuilder()
                .subject_name(_name(subject))
                .issuer_name(_name(issuer))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
            )

        def pem_key(key: ec.EllipticCurvePrivateKey) -> str:
            return key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()

        def ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                certificate(common_name, key, common_name, key)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
                )
                .sign(key, hashes.SHA256())
            )
            return key, cert

        ca_key, ca_cert = ca("mqtthub test CA")
        _, other_ca = ca("some other CA")
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            certificate("127.0.0.1", server_key, "mqtthub test CA", ca_key)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        client_cert = (
            certificate("integration-client", client_key, "mqtthub test CA", ca_key)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        p12 = pkcs12.serialize_key_and_certificates(
            b"integration-client",
            client_key,
            client_cert,
            None,
            serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
        )
        pem = serialization.Encoding.PEM
        return cls(
            ca_pem=ca_cert.public_bytes(pem).decode(),
            server_cert_pem=server_cert.public_bytes(pem).decode(),
            server_key_pem=pem_key(server_key),
            client_cert_pem=client_cert.public_bytes(pem).decode(),
            client_key_pem=pem_key(client_key),
            client_p12=p12,
            other_ca_pem=other_ca.public_bytes(pem).decode(),
        )


@dataclass
class Mosquitto:
    """A Mosquitto process with a password listener, a TLS one, a mutual-TLS one, WebSocket and secure WebSocket."""

    workdir: Path
    pki: Certificates
    tcp_port: int = 0
    tls_port: int = 0
    mtls_port: int = 0
    ws_port: int = 0
    wss_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self._pick_ports()

    def _pick_ports(self) -> None:
        self.tcp_port, self.tls_port, self.mtls_port, self.ws_port, self.wss_port = free_ports(5)

    def write_config(self) -> Path:
        """Write certificates, the password file and ``mosquitto.conf`` into ``workdir``."""
        files = {
            "ca.pem": self.pki.ca_pem,
            "server.pem": self.pki.server_cert_pem,
            "server.key": self.pki.server_key_pem,
        }
        for name, text in files.items():
            (self.workdir / name).write_text(text)
        passwords = self.workdir / "passwd"
        passwords.touch(mode=0o600)
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), USERNAME, PASSWORD], check=True)
        tls = f"cafile {self.workdir}/ca.pem\ncertfile {self.workdir}/server.pem\nkeyfile {self.workdir}/server.key\n"
        config = self.workdir / "mosquitto.conf"
        config.write_text(
            # Mosquitto started as root drops to the "mosquitto" user unless told to stay who started it.
            f"user {getpass.getuser()}\n"
            "per_listener_settings true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"listener {self.tcp_port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
            f"listener {self.tls_port} 127.0.0.1\nallow_anonymous true\n{tls}"
            f"listener {self.mtls_port} 127.0.0.1\nallow_anonymous true\n{tls}require_certificate true\n"
            f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"
            f"listener {self.wss_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n{tls}"
        )
        return config

    def start(self, timeout: float = 15.0) -> None:
        """Start Mosquitto and wait until every listener accepts connections.

        A port another process took between picking and binding it makes Mosquitto exit: then it starts again
        on other free ports (a few times).
        """
        for attempt in range(5):
            try:
                self._start(timeout)
                return
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or attempt == 4:
                    raise
            self._pick_ports()
            self.write_config()

    def _start(self, timeout: float) -> None:
        config = self.workdir / "mosquitto.conf"
        if not config.exists():
            self.write_config()
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        pending = [self.tcp_port, self.tls_port, self.mtls_port, self.ws_port, self.wss_port]
        while pending:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.workdir / 'mosquitto.log').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError("mosquitto did not open its listeners")
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=1):
                    pending.pop(0)
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the process this object started (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
