"""``BrokerListener``: listen to topics on any MQTT broker, with a callback per message.

The standalone listener of document 003, generalised: connect with a password or a
client certificate (PEM or PKCS#12), subscribe, hand each message to a callback, and
reconnect (jittered exponential backoff) when the connection drops. :meth:`start` blocks
until :meth:`stop` (or Ctrl+C); :meth:`start_background` runs the same loop in a thread::

    listener = BrokerListener("mqtts://broker.example.com:8883", ["app/user/42/sub"],
                              tls=TLSOptions(pkcs12=p12_bytes, pkcs12_password="…"),
                              on_message=lambda message: print(message.topic, message.json()))
    listener.start_background()
    ...
    listener.stop()

This module imports no server code.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from mqtthub.client.connection import ConnectionOptions, ConnectRefused, Protocol, close_client, connect
from mqtthub.client.tls import CertificateError, TLSOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListenerMessage:
    """A received message, stamped with the local time it arrived."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def text(self) -> str:
        """The payload as UTF-8 text (undecodable bytes replaced)."""
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The payload parsed as JSON.

        Raises:
            ValueError: the payload is not JSON.
        """
        return json.loads(self.payload)


class ListenerState(enum.Enum):
    """Life cycle of a :class:`BrokerListener`."""

    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


class ListenerStateError(RuntimeError):
    """A listener was started twice, or used after it stopped."""


class BrokerListener:
    """Subscribes to ``topics`` on one broker and calls ``on_message`` for every message.

    Args:
        broker: An ``mqtt://``, ``mqtts://``, ``ws://`` or ``wss://`` URL, or full :class:`ConnectionOptions`.
        topics: Topic filters to subscribe to.
        on_message: Called in the listener's thread for each message; its exceptions are logged, not raised.
        qos: QoS of the subscriptions.
        username: User name (overrides the URL's).
        password: Password (overrides the URL's).
        tls: TLS settings, e.g. a client certificate; a ``mqtts``/``wss`` URL uses system trust by default.
        client_id: MQTT client id; the broker assigns one when empty (clean sessions only).
        protocol: ``"3.1.1"`` or ``"5.0"``.
        reconnect_min: First reconnect delay in seconds (doubles, jittered, up to ``reconnect_max``).
        reconnect_max: Longest reconnect delay in seconds.
        on_status: Called with a short text on every connect, disconnect and connection error.
    """

    def __init__(
        self,
        broker: str | ConnectionOptions,
        topics: Sequence[str],
        *,
        on_message: Callable[[ListenerMessage], None] | None = None,
        qos: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: TLSOptions | None = None,
        client_id: str | None = None,
        protocol: Protocol | None = None,
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        options = ConnectionOptions.from_url(broker) if isinstance(broker, str) else broker
        changes: dict[str, Any] = {}
        if username is not None:
            changes["username"] = username
        if password is not None:
            changes["password"] = password
        if tls is not None:
            changes["tls"] = tls
        if client_id is not None:
            changes["client_id"] = client_id
        if protocol is not None:
            changes["protocol"] = protocol
        self.options = replace(options, **changes)
        if not topics:
            raise ValueError("give at least one topic to listen to")
        self.topics = list(topics)
        self.qos = qos
        self.on_message = on_message
        self.on_status = on_status
        self.state = ListenerState.CREATED
        self.messages_received = 0
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unacknowledged = 0

    # --- life cycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen in the calling thread until :meth:`stop` is called (or Ctrl+C, which stops cleanly)."""
        self._begin()
        try:
            self._run()
        except KeyboardInterrupt:
            self._stop.set()
        finally:
            self.state = ListenerState.STOPPED

    def start_background(self) -> None:
        """Listen in a daemon thread and return at once; see :meth:`wait_connected` and :meth:`stop`."""
        self._begin()
        self._thread = threading.Thread(target=self._run_background, name="mqtthub-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect and end :meth:`start` or the background thread; idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.state = ListenerState.STOPPED

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until connected and subscribed; False on timeout."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._connected.is_set()

    def __enter__(self) -> BrokerListener:
        self.start_background()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _begin(self) -> None:
        if self.state is not ListenerState.CREATED:
            raise ListenerStateError(f"a listener can be started only once (it is {self.state.value})")
        self.state = ListenerState.RUNNING

    def _run_background(self) -> None:
        try:
            self._run()
        finally:
            self.state = ListenerState.STOPPED

    # --- the loop ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._lost.clear()
            try:
                connected = connect(self.options, self._install)
            except (ConnectRefused, CertificateError, OSError, ValueError) as exc:
                text = f"{exc}: {exc.details}" if isinstance(exc, ConnectRefused) else f"connection failed: {exc}"
                self._status(text)
                if isinstance(exc, CertificateError):  # retrying cannot fix the material
                    raise
                ceiling = min(self._reconnect_max, self._reconnect_min * 2 ** min(attempt, 30))
                attempt += 1
                self._stop.wait(random.uniform(ceiling / 2, ceiling))
                continue
            attempt = 0
            client = connected.client
            try:
                self._status(f"connected to {self.options.host}:{self.options.port}")
                with self._lock:
                    self._unacknowledged = len(self.topics)
                for topic in self.topics:
                    client.subscribe(topic, qos=self.qos)
                while not self._stop.is_set() and not self._lost.is_set():
                    self._stop.wait(0.2)
            finally:
                self._connected.clear()
                close_client(client)
                self._status("disconnected")

    def _install(self, client: paho.Client) -> None:
        client.on_message = self._deliver
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed

    def _subscribed(self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                self._status(f"subscription refused: {reason.getName()}")
        with self._lock:
            self._unacknowledged -= 1
            done = self._unacknowledged == 0
        if done:
            self._connected.set()
            self._status(f"subscribed to {', '.join(self.topics)}")

    def _deliver(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.messages_received += 1
        if self.on_message is None:
            return
        item = ListenerMessage(message.topic, bytes(message.payload), message.qos, bool(message.retain))
        try:
            self.on_message(item)
        except Exception:  # a failing callback must not end the listener
            logger.exception("the message callback failed for topic %s", message.topic)

    def _disconnected(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self._lost.set()
        if not self._stop.is_set():
            self._status(f"connection lost: {reason.getName()}")

    def _status(self, text: str) -> None:
        logger.info("listener: %s", text)
        if self.on_status is not None:
            self.on_status(text)
