"""A real 2-node RabbitMQ cluster for tests, run as plain processes on 127.0.0.1 from Debian's package.

The ``/usr/sbin`` wrappers switch to the ``rabbitmq`` account and ignore a custom ``HOME`` and cookie, so the nodes
run from the real scripts in ``/usr/lib/rabbitmq/bin`` with every path, port and name set in their environment:
their own epmd on an ephemeral port (so node names never clash with another cluster on the machine), a shared
Erlang cookie, and a ``rabbitmq.conf`` enabling the MQTT, Web MQTT, management and HTTP auth backend plugins.

Both nodes boot at the same time; the second then joins the first (``stop_app``, ``join_cluster``, ``start_app``).
The hub's own account (``admin``) lives in RabbitMQ's internal database, consulted first; every other login goes to
the HTTP auth backend, whose URLs a test points at a hub with :meth:`RabbitCluster.use_auth_backend` (the plugin
reads them on every request).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.postgres import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"
PLUGINS = ("rabbitmq_management", "rabbitmq_mqtt", "rabbitmq_web_mqtt", "rabbitmq_auth_backend_http")
START_TIMEOUT = 120.0


def rabbitmq_installed() -> bool:
    """Whether Debian's ``rabbitmq-server`` (and the Erlang epmd it runs on) is installed."""
    return (RABBITMQ_BIN / "rabbitmq-server").exists() and shutil.which("epmd") is not None


@dataclass(frozen=True)
class RabbitNode:
    """One node's name and ports, all on 127.0.0.1."""

    name: str
    amqp_port: int
    dist_port: int
    management_port: int
    mqtt_port: int
    web_mqtt_port: int

    @property
    def amqp_url(self) -> str:
        """The AMQP URL of the hub's account on this node (default vhost)."""
        return f"amqp://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{self.amqp_port}/"

    @property
    def management_url(self) -> str:
        """The base URL of this node's management HTTP API."""
        return f"http://127.0.0.1:{self.management_port}"


class RabbitCluster:
    """Two clustered RabbitMQ nodes in a temporary directory; :meth:`close` stops them by PID and deletes it all."""

    def __init__(self, size: int = 2) -> None:
        if not rabbitmq_installed():
            raise RuntimeError("RabbitMQ is not installed (apt-get install rabbitmq-server)")
        self.workdir = Path(tempfile.mkdtemp(prefix="mqtthub-rabbit-"))
        self.home = self.workdir / "home"
        self.home.mkdir()
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(base64.b32encode(os.urandom(20)).decode())
        cookie.chmod(0o400)
        self.epmd_port = free_port()
        self.nodes = [
            RabbitNode(
                name=f"rabbit{index}@localhost",
                amqp_port=free_port(),
                dist_port=free_port(),
                management_port=free_port(),
                mqtt_port=free_port(),
                web_mqtt_port=free_port(),
            )
            for index in range(1, size + 1)
        ]
        self._ctl_port = free_port()
        self._epmd: subprocess.Popen[bytes] | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- processes -------------------------------------------------------------------------------

    def _env(self, node: RabbitNode | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_CONF_ENV_FILE": str(self.workdir / "rabbitmq-env.conf"),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self._ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self._ctl_port + 10),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
        }
        if node is not None:
            short = node.name.split("@")[0]
            base = self.workdir / short
            env |= {
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(node.amqp_port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            }
        return env

    def _write_config(self, node: RabbitNode) -> None:
        base = self.workdir / node.name.split("@")[0]
        (base / "log").mkdir(parents=True)
        (base / "mnesia").mkdir()
        lines = [
            "loopback_users = none",
            # The hub's account: an administrator on the default vhost, created by the first node's boot.
            f"default_user = {ADMIN_USER}",
            f"default_pass = {ADMIN_PASSWORD}",
            "default_user_tags.administrator = true",
            "auth_backends.1 = internal",
            "auth_backends.2 = http",
            "auth_http.http_method = post",
            # Answers of a backend no hub serves yet: every login through it is refused.
            *(f"auth_http.{kind}_path = http://127.0.0.1:9/{kind}" for kind in ("user", "vhost", "resource", "topic")),
            "management.tcp.ip = 127.0.0.1",
            f"management.tcp.port = {node.management_port}",
            f"mqtt.listeners.tcp.default = 127.0.0.1:{node.mqtt_port}",
            "mqtt.allow_anonymous = false",
            "web_mqtt.tcp.ip = 127.0.0.1",
            f"web_mqtt.tcp.port = {node.web_mqtt_port}",
            # Statistics every second (not 5 s), so connection listings catch up quickly.
            "collect_statistics_interval = 1000",
        ]
        if node != self.nodes[0]:
            # The other nodes join the first while booting, retrying until it is up (they boot at the same time).
            lines += [
                "cluster_formation.peer_discovery_backend = classic_config",
                f"cluster_formation.classic_config.nodes.1 = {self.nodes[0].name}",
                f"cluster_formation.discovery_retry_limit = {int(START_TIMEOUT)}",
                "cluster_formation.discovery_retry_interval = 1000",
            ]
        (base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")

    def _ctl(self, node: RabbitNode, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name}: {done.stdout}{done.stderr}")
        return done.stdout

    def _boot(self, node: RabbitNode) -> None:
        short = node.name.split("@")[0]
        log = (self.workdir / f"{short}.out").open("ab")
        self._processes[node.name] = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self._env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        # `wait` first waits for the PID file, so it does not fail before the node has registered with epmd.
        pid_file = str(self.workdir / short / "rabbit.pid")
        try:
            self._ctl(node, "wait", pid_file, "--timeout", str(int(START_TIMEOUT)), timeout=START_TIMEOUT + 10)
        except RuntimeError as exc:
            node_log = self.workdir / short / "log" / f"{node.name}.log"
            tail = node_log.read_text(errors="replace").splitlines()[-30:] if node_log.exists() else []
            raise RuntimeError(f"{exc}\n{node.name} log:\n" + "\n".join(tail)) from None

    def start(self) -> None:
        """Boot every node at once, join them into one cluster and create the hub's account."""
        (self.workdir / "rabbitmq-env.conf").write_text("")
        (self.workdir / "enabled_plugins").write_text("[" + ",".join(PLUGINS) + "].\n")
        for node in self.nodes:
            self._write_config(node)
        self._epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._boot, self.nodes))
        seed = self.nodes[0]
        running = {entry["name"] for entry in self.api("GET", "/nodes") if entry.get("running")}
        for node in self.nodes[1:]:
            if node.name in running:
                continue
            self._ctl(node, "stop_app")
            self._ctl(node, "join_cluster", seed.name)
            self._ctl(node, "start_app")

    def kill(self, node: RabbitNode) -> None:
        """``kill -9`` one node (its process group) and wait for it to be gone."""
        process = self._processes.pop(node.name, None)
        if process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def close(self) -> None:
        """Stop every node and epmd (by PID), then delete the directory."""
        for node in self.nodes:
            process = self._processes.pop(node.name, None)
            if process is None:
                continue
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._epmd is not None:
            self._epmd.kill()
            self._epmd.wait()
            self._epmd = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- management ------------------------------------------------------------------------------

    def use_auth_backend(self, base_url: str, node: RabbitNode | None = None) -> None:
        """Send the HTTP auth backend requests of ``node`` (every node by default) to ``base_url/user``, ``/vhost``…

        ``base_url`` may carry ``user:secret@`` (RabbitMQ sends it as basic authentication).
        """
        for each in [node] if node is not None else self.nodes:
            if each.name not in self._processes:
                continue
            settings = "".join(
                f'application:set_env(rabbitmq_auth_backend_http, {kind}_path, "{base_url}/{kind}"), '
                for kind in ("user", "vhost", "resource", "topic")
            )
            self._ctl(each, "eval", settings + "ok.")

    def api(self, method: str, path: str, body: Any = None, *, node: RabbitNode | None = None) -> Any:
        """Call the management API of ``node`` (the first by default) as the hub's account; JSON in and out."""
        target = node or self.nodes[0]
        request = urllib.request.Request(
            target.management_url + "/api" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode(),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            content = response.read()
        return json.loads(content) if content else None


@contextmanager
def rabbit_cluster(size: int = 2) -> Iterator[RabbitCluster]:
    """Run a throw-away cluster of ``size`` nodes; always stopped (by PID) and deleted on exit."""
    cluster = RabbitCluster(size)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


__all__ = ["ADMIN_PASSWORD", "ADMIN_USER", "RabbitCluster", "RabbitNode", "rabbit_cluster", "rabbitmq_installed"]
