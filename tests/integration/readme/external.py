"""What the README's examples reach besides the hub: ``broker.example.com`` is a local Mosquitto."""

from __future__ import annotations

import getpass
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.integrations.mosquitto import Mosquitto

# The credentials the README's integration example configures for its external broker.
README_USERNAME = "bre-tyres"
README_PASSWORD = "secure-password-123"


@dataclass
class ExampleBroker(Mosquitto):
    """Mosquitto as the README's ``broker.example.com``, its server certificate issued by the hub's CA.

    Listeners: ``tcp_port`` and ``tls_port`` with the README's user name and password; ``mtls_port`` wants a
    client certificate of the hub's CA (the README's ``client.p12``); ``ws_port`` and ``wss_port`` are open.
    """

    def write_config(self) -> Path:
        """Write the certificates, the password file and ``mosquitto.conf`` into ``workdir``."""
        for name, text in {
            "ca.pem": self.pki.ca_pem,
            "server.pem": self.pki.server_cert_pem,
            "server.key": self.pki.server_key_pem,
        }.items():
            (self.workdir / name).write_text(text)
        passwords = self.workdir / "passwd"
        passwords.touch(mode=0o600)
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), README_USERNAME, README_PASSWORD], check=True)
        tls = f"cafile {self.workdir}/ca.pem\ncertfile {self.workdir}/server.pem\nkeyfile {self.workdir}/server.key\n"
        password = f"allow_anonymous false\npassword_file {passwords}\n"
        config = self.workdir / "mosquitto.conf"
        config.write_text(
            f"user {getpass.getuser()}\n"
            "per_listener_settings true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            f"listener {self.tcp_port} 127.0.0.1\n{password}"
            f"listener {self.tls_port} 127.0.0.1\n{password}{tls}"
            f"listener {self.mtls_port} 127.0.0.1\nallow_anonymous true\n{tls}require_certificate true\n"
            f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"
            f"listener {self.wss_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n{tls}"
        )
        return config

    def publish(self, topic: str, payload: bytes, *, count: int = 1) -> None:
        """Publish ``payload`` ``count`` times (QoS 1, acknowledged) through the password listener."""
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"readme-feed-{time.monotonic_ns()}")
        client.username_pw_set(README_USERNAME, README_PASSWORD)
        client.connect("127.0.0.1", self.tcp_port)
        client.loop_start()
        try:
            for _ in range(count):
                client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
        finally:
            client.disconnect()
            client.loop_stop()
