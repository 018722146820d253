"""Connections benchmark: how fast the full hub admits clients, how it survives a storm, what a connection costs.

Usage (or ``scripts/bench connections``)::

    python bench/connect_bench.py [--quick] [--repeat N] [--only KEY ...] [--no-write] [--large]

Every scenario starts its broker fresh: Debian's Mosquitto (as ``bench/brokers.py`` configures it) and
``mqtthub serve`` (``bench/hub_server.py``: the whole hub on SQLite, anonymous access on, seeded with
devices and API tokens) on the asyncio loop and on uvloop (``MQTTHUB_EVENT_LOOP``), taking turns within
each repetition. The load is ``bench/storm.py``.

- **connects/s**: 10,000 clients, two load processes with 64 handshakes in flight each; anonymous,
  then (hub only) 10,000 devices with their device tokens and 10,000 apps with API tokens, each client
  presenting its own credential once, so none is in the hub's credential cache (as after a restart). With
  fewer, a run lasts under half a second and its first moments (the first batches, statements prepared
  on first use) weigh on the rate more than the admission itself.
- **storm**: 10,000 anonymous clients all connecting at once; met when every one has its CONNACK
  within 10 s of the start. With ``--large`` also 50,000 (needs the open-files limit raised, which
  this script does as root, and four loopback source addresses for the ports).
- **memory**: RSS before, with 10,000 idle connections, and 10 s after they closed: KiB per
  connection and the RSS after close relative to the start. With ``--large`` also at 100,000.

The results go between the ``connections`` markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker_bench import machine
from brokers import RunningBroker, Target, cpu_seconds, rss_kib, started
from hub_server import Credentials, seed, started_hub
from report import finite, save, update
from storm import StormResult, run_storm

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START_MARK = "<!-- connections:start -->"
END_MARK = "<!-- connections:end -->"
MOSQUITTO = Target("mosquitto", "mosquitto")
HUBS = {"mqtthub serve (asyncio)": "asyncio", "mqtthub serve (uvloop)": "uvloop"}
"""The hub as each event loop runs it (MQTTHUB_EVENT_LOOP)."""
TOKEN_CLIENTS = 10_000
AFTER_CLOSE = 10.0
"""Seconds after the clients closed at which the memory left is read."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One row: who connects, how, and against which broker."""

    key: str
    title: str
    kind: str
    """``rate`` (connects/s), ``storm`` (all CONNACKs within 10 s) or ``memory`` (KiB per connection)."""
    clients: int
    credentials: str = "anonymous"
    """``anonymous``, ``device`` or ``api``; the latter two are measured on the hub alone."""
    concurrency: int = 64


SCENARIOS = (
    Scenario("rate-anonymous", "Connects/s, 10,000 anonymous clients, 128 in flight", "rate", 10_000),
    Scenario(
        "rate-device", "Connects/s, 10,000 devices with device tokens, 128 in flight", "rate", TOKEN_CLIENTS, "device"
    ),
    Scenario("rate-api", "Connects/s, 10,000 apps with API tokens, 128 in flight", "rate", TOKEN_CLIENTS, "api"),
    Scenario("storm-10k", "Storm: 10,000 anonymous clients at once", "storm", 10_000, concurrency=0),
    Scenario("memory-10k", "Memory per idle connection, 10,000 connections", "memory", 10_000, concurrency=128),
)
LARGE = (
    Scenario("storm-50k", "Storm: 50,000 anonymous clients at once", "storm", 50_000, concurrency=0),
    Scenario("memory-100k", "Memory per idle connection, 100,000 connections", "memory", 100_000, concurrency=128),
)


@dataclass(slots=True)
class Measurement:
    """One scenario against one broker."""

    value: float
    detail: str = ""
    ok: bool = True
    cpu_us: float = float("nan")
    """Broker CPU time (user + system, all threads) per admitted client, in µs."""
    after_close: float = float("nan")
    """Memory scenarios: RSS 2 s after the clients closed / RSS before they connected."""


def raise_file_limit(wanted: int) -> int:
    """Raise this process's open-files limit (inherited by the brokers and load workers) towards ``wanted``.

    The hard limit can only be raised with the privilege to do so (CAP_SYS_RESOURCE); returns the limit reached.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass
    target = min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _broker(
    scenario: Scenario, target: str, workdir: Path
) -> tuple[AbstractContextManager[RunningBroker], list[Credentials]]:
    if target == "mosquitto":
        return started(MOSQUITTO), [(None, None)] * scenario.clients
    devices = scenario.clients if scenario.credentials == "device" else 0
    apps = scenario.clients if scenario.credentials == "api" else 0
    device_credentials, api_credentials = seed(workdir, devices, apps)
    credentials = {"device": device_credentials, "api": api_credentials}.get(
        scenario.credentials, [(None, None)] * scenario.clients
    )
    env = {"MQTTHUB_MAX_CONNECTIONS": str(scenario.clients + 1000), "MQTTHUB_EVENT_LOOP": HUBS[target]}
    return started_hub(workdir, env), credentials


def measure(scenario: Scenario, target: str, workdir: Path) -> Measurement:
    """Start the broker, run the scenario, stop the broker."""
    context, credentials = _broker(scenario, target, workdir)
    with context as broker:
        time.sleep(1.0)
        if scenario.kind == "memory":
            return _memory(broker, credentials, scenario)
        cpu_before = cpu_seconds(broker.pid)
        result = run_storm(broker.port, credentials, concurrency=scenario.concurrency, deadline=10.0)
        cpu = cpu_seconds(broker.pid) - cpu_before
    measured = _admission(scenario, result)
    if result.connected:
        measured.cpu_us = cpu / result.connected * 1e6
    return measured


def _admission(scenario: Scenario, result: StormResult) -> Measurement:
    detail = (
        f"{result.connected:,} of {result.clients:,} in {result.seconds:.2f} s,"
        f" p50 {result.p50 * 1000:.0f} ms, p99 {result.p99 * 1000:.0f} ms"
    )
    if result.errors:
        detail += "; " + "; ".join(result.errors[:2])
    if scenario.kind == "storm":
        ok = result.connected == result.clients and result.seconds <= 10.0
        return Measurement(result.seconds, detail, ok)
    return Measurement(result.rate, detail, result.connected == result.clients)


def _memory(broker: RunningBroker, credentials: list[Credentials], scenario: Scenario) -> Measurement:
    before = rss_kib(broker.pid)
    result = run_storm(
        broker.port, credentials, concurrency=scenario.concurrency, deadline=60.0, hold=lambda _: rss_kib(broker.pid)
    )
    during = result.measured if result.measured is not None else before
    time.sleep(AFTER_CLOSE)
    after = rss_kib(broker.pid)
    if not result.connected:
        return Measurement(float("nan"), "; ".join(result.errors[:2]) or "no connection opened", False)
    per_connection = (during - before) / result.connected
    detail = (
        f"RSS {before / 1024:.1f} → {during / 1024:.1f} MiB with {result.connected:,} connected,"
        f" {after / 1024:.1f} MiB {AFTER_CLOSE:.0f} s after they closed ({after / before:.2f} times the start)"
    )
    return Measurement(per_connection, detail, result.connected == scenario.clients, after_close=after / before)


def _targets(scenario: Scenario, hubs: list[str]) -> list[str]:
    return hubs if scenario.credentials != "anonymous" else ["mosquitto", *hubs]


TARGETS: dict[str, tuple[str, Callable[[float, float | None, Measurement], bool]]] = {
    "rate": ("ratio ≥ 0.8", lambda value, ratio, m: ratio is not None and ratio >= 0.8 and m.ok),
    "storm": ("all CONNACKs within 10 s", lambda value, ratio, m: m.ok),
    "memory": (
        "≤ 3 KiB, RSS after close within 20 % of the start",
        lambda value, ratio, m: value <= 3.0 and m.after_close <= 1.2 and m.ok,
    ),
}


def _format(kind: str, m: Measurement | None) -> str:
    if m is None:
        return "—"
    if m.value != m.value:
        return "failed"
    if kind == "rate":
        return f"{m.value:,.0f}"
    if kind == "storm":
        return f"{m.value:.2f} s" if m.ok else "not all"
    return f"{m.value:.1f}"


def _cpu(m: Measurement | None) -> str:
    return f"{m.cpu_us:.0f}" if m is not None and m.cpu_us == m.cpu_us else "—"


def _best(kind: str, runs: list[Measurement]) -> Measurement:
    valid = [m for m in runs if m.value == m.value] or runs
    if kind == "rate":
        return max(valid, key=lambda m: (m.ok, m.value))
    return min(valid, key=lambda m: (not m.ok, m.value))


def render(
    results: dict[str, dict[str, Measurement]], scenarios: list[Scenario], hubs: list[str], load: tuple[float, float]
) -> str:
    """The Markdown block between the connections markers."""
    units = {"rate": "connects/s", "storm": "last CONNACK after", "memory": "KiB"}
    info = machine()
    lines = [
        START_MARK,
        "",
        f"Measured {info['Date']} on {info['CPU']}, Python {info['Python']}, mosquitto {info['mosquitto']};"
        f" 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (the benchmark's own"
        " processes included).",
        "",
        "| "
        + " | ".join(["Scenario", "Unit", "mosquitto", *(f"{hub} | ratio" for hub in hubs), "Target", "Met"])
        + " |",
        "| " + " | ".join(["---"] * (5 + 2 * len(hubs))) + " |",
    ]
    notes: list[str] = []
    for scenario in scenarios:
        row = results.get(scenario.key)
        if not row:
            continue
        reference = row.get("mosquitto")
        target, check = TARGETS[scenario.kind]
        cells = [scenario.title, units[scenario.kind], _format(scenario.kind, reference)]
        verdicts: list[str] = []
        for hub in hubs:
            mine = row[hub]
            ratio: float | None = None
            if scenario.kind == "rate":
                base = reference or results.get("rate-anonymous", {}).get("mosquitto")
                ratio = mine.value / base.value if base is not None and base.value else None
            elif scenario.kind == "memory" and reference is not None and reference.value:
                ratio = mine.value / reference.value
            cells += [_format(scenario.kind, mine), f"{ratio:.2f}" if ratio is not None and ratio == ratio else "—"]
            verdicts.append(f"{HUBS[hub]}: {'yes' if check(mine.value, ratio, mine) else 'no'}")
        cells += [target, "; ".join(verdicts)]
        lines.append("| " + " | ".join(cells) + " |")
        for key, m in row.items():
            notes.append(f"- {scenario.title}, {key}: {m.detail}")
    lines += [
        "",
        "Ratios of token scenarios are to Mosquitto's anonymous rate in the same run (Mosquitto has no such"
        " tokens). Best of the runs per broker.",
        "",
        "Broker CPU time (user + system, all threads) per admitted client, in µs (lower is better; steadier than"
        " connects/s on a shared machine):",
        "",
        "| Scenario | mosquitto | " + " | ".join(hubs) + " |",
        "| " + " | ".join(["---"] * (2 + len(hubs))) + " |",
        *(
            "| " + " | ".join([s.title, *(_cpu(results[s.key].get(key)) for key in ["mosquitto", *hubs])]) + " |"
            for s in scenarios
            if s.kind != "memory" and s.key in results
        ),
        "",
        *notes,
        "",
        END_MARK,
    ]
    return "\n".join(lines)


def run_data(
    results: dict[str, dict[str, Measurement]], scenarios: list[Scenario], hubs: list[str], load: tuple[float, float]
) -> dict[str, Any]:
    """The run as data (``docs/bench/connections.json``), from which bench/report.py draws plots and summary."""
    return {
        "machine": machine(),
        "load": {"start": [load[0]], "end": [load[1]]},
        "brokers": {key: key for key in ["mosquitto", *hubs]},
        "scenarios": [
            {"key": s.key, "title": s.title, "kind": s.kind, "clients": s.clients, "credentials": s.credentials}
            for s in scenarios
            if s.key in results
        ],
        "results": {
            key: {
                broker: {
                    "value": finite(m.value),
                    "ok": m.ok,
                    "cpu_us": finite(m.cpu_us),
                    "after_close": finite(m.after_close),
                    "detail": m.detail,
                }
                for broker, m in row.items()
            }
            for key, row in results.items()
        },
    }


def write_doc(block: str) -> None:
    """Replace the connections block of docs/benchmarks.md (appending it the first time)."""
    text = DOC.read_text()
    if START_MARK not in text:
        text = text.rstrip("\n") + f"\n\n## Connections\n\n{START_MARK}\n{END_MARK}\n"
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    DOC.write_text(head + block + tail)


def _workdirs(base: Path) -> Iterator[Path]:
    n = 0
    while True:
        n += 1
        path = base / f"run-{n}"
        path.mkdir()
        yield path


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the table, write the doc."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the clients (smoke test)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per broker and scenario; the best counts")
    parser.add_argument("--large", action="store_true", help="also the 50,000 storm and 100,000 idle connections")
    all_scenarios = [*SCENARIOS, *LARGE]
    parser.add_argument("--only", nargs="+", choices=[s.key for s in all_scenarios], help="scenarios to run")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    parser.add_argument("--no-uvloop", action="store_true", help="run the hub on the asyncio loop only")
    args = parser.parse_args(argv)
    hubs = [hub for hub, loop in HUBS.items() if loop == "asyncio" or not args.no_uvloop]
    scenarios = [s for s in (all_scenarios if args.large else SCENARIOS) if not args.only or s.key in args.only]
    if args.quick:
        scenarios = [Scenario(s.key, s.title, s.kind, s.clients // 10, s.credentials, s.concurrency) for s in scenarios]
    limit = raise_file_limit(max(s.clients for s in scenarios) + 1000)
    print(f"open-files limit: {limit:,}", file=sys.stderr)
    skipped = [s for s in scenarios if s.clients + 1000 > limit]
    scenarios = [s for s in scenarios if s not in skipped]
    for scenario in skipped:
        needed = f"{scenario.clients:,} sockets"
        print(f"skipped {scenario.key}: needs {needed}, the open-files limit is {limit:,}", file=sys.stderr)
    load_start = os.getloadavg()[0]
    results: dict[str, dict[str, Measurement]] = {}
    with tempfile.TemporaryDirectory(prefix="mqtthub-connect-bench-") as tmp:
        workdirs = _workdirs(Path(tmp))
        for scenario in scenarios:
            runs: dict[str, list[Measurement]] = {}
            for _ in range(max(1, args.repeat)):
                for target in _targets(scenario, hubs):
                    m = measure(scenario, target, next(workdirs))
                    runs.setdefault(target, []).append(m)
                    print(f"{scenario.key:>15} {target:<14} {_format(scenario.kind, m):>10}  {m.detail}", flush=True)
            results[scenario.key] = {key: _best(scenario.kind, ms) for key, ms in runs.items()}
    block = render(results, scenarios, hubs, (load_start, os.getloadavg()[0]))
    print()
    print(block)
    if not args.no_write and not args.quick:
        write_doc(block)
        print(f"written to {DOC}")
        run = run_data(results, scenarios, hubs, (load_start, os.getloadavg()[0]))
        print(f"written to {save('connections', run)}")
        for path in update():
            print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
