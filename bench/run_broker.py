"""Run the embedded broker alone in this process, for the benchmark.

The broker listens on 127.0.0.1 with one TCP listener, lets every client in and
allows every publish and subscribe, so the benchmark measures the broker and not
the hub's identity checks. Once bound it prints ``ready <port>`` on stdout; on
SIGTERM or SIGINT it prints ``stats <JSON of BrokerStats>`` and stops gracefully.

Usage::

    python bench/run_broker.py [--port 0] [--uvloop] [--max-connections N] [--profile FILE]
                               [--persistence off|periodic|sync --state-dir DIR] [--max-queued N]

``--profile`` runs the broker under :mod:`cProfile` and writes the statistics to
FILE when it stops (for ``pstats``); profiling slows it down several times, so
profiled figures only show where the time goes, not how fast it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import json
import resource
import signal
import sys
from pathlib import Path

from mqtthub.broker import Broker, BrokerConfig, ListenerConfig
from mqtthub.broker.hooks import Action, ConnectInfo, Principal
from mqtthub.broker.persistence import StateStore
from mqtthub.brokerstate import SQLiteStateStore
from mqtthub.memory import tune_collector

_ANONYMOUS = Principal(id="anonymous", kind="anonymous")


class AllowAll:
    """Authenticator and authorizer that accept everyone and everything."""

    def admit(self, info: ConnectInfo) -> Principal:
        """Every client is the anonymous principal, at once."""
        return _ANONYMOUS

    def forget(self, principal_id: str) -> None:
        """Nothing is remembered."""

    async def authorize(self, principal: Principal, action: Action, topic: str) -> bool:
        """Everything is allowed."""
        return True


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard limit (10,000 idle clients need 10,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def serve(
    port: int, max_connections: int, *, persistence: str = "off", state_dir: Path | None = None, max_queued: int = 1000
) -> None:
    """Run the broker until SIGTERM or SIGINT; with ``persistence``, its state goes to ``state_dir``."""
    async with contextlib.AsyncExitStack() as stack:
        store = None
        if persistence != "off":
            assert state_dir is not None
            store = await stack.enter_async_context(
                SQLiteStateStore(state_dir / "broker-state.db", durable=persistence == "sync")
            )
        await _serve(port, max_connections, store, persistence, max_queued)


async def _serve(port: int, max_connections: int, store: StateStore | None, persistence: str, max_queued: int) -> None:
    config = BrokerConfig(
        listeners=(ListenerConfig(name="tcp", port=port),),
        # The idle-connection scenario opens 10,000 clients at once; mosquitto limits neither count nor rate.
        max_connections=max_connections,
        max_connection_rate=float(max_connections),
        max_queued_messages=max_queued,
        persistence="periodic" if persistence == "periodic" else "sync",
    )
    allow = AllowAll()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Broker(config, authenticator=allow, authorizer=allow, state_store=store) as broker:
        tune_collector()  # as `mqtthub serve` does once it has started
        print(f"ready {broker.addresses['tcp'][1]}", flush=True)
        await stop.wait()
        # The counters say what the broker dropped and why (queue bounds), which a client cannot tell.
        print(f"stats {json.dumps(dataclasses.asdict(broker.stats()))}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: ephemeral, printed)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (the mqtthub[speed] extra)")
    parser.add_argument("--max-connections", type=int, default=20_000)
    parser.add_argument("--profile", metavar="FILE", help="write cProfile statistics to FILE on exit")
    parser.add_argument("--persistence", choices=("off", "periodic", "sync"), default="off")
    parser.add_argument("--state-dir", type=Path, help="directory of the broker state file (with --persistence)")
    parser.add_argument("--max-queued", type=int, default=1000, help="QoS 1/2 messages held per session")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    options = {"persistence": args.persistence, "state_dir": args.state_dir, "max_queued": args.max_queued}
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        if args.uvloop:
            import uvloop

            uvloop.run(serve(args.port, args.max_connections, **options))
        else:
            asyncio.run(serve(args.port, args.max_connections, **options))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    sys.exit(0)


if __name__ == "__main__":
    main()
