"""What Prometheus metrics cost: MQTT throughput of a served hub, ``/metrics`` off vs on and scraped every second.

Each run starts ``mqtthub serve`` (anonymous MQTT, SQLite) as a child process, as a user would,
and pushes one load through its broker with the benchmark's load generator (:mod:`loadgen`):
QoS 1 from several publishers to one wildcard subscriber, then QoS 0 the same way. With
metrics on, a scraper reads ``/metrics`` once a second for the whole run, parsing each answer
with prometheus-client's parser as Prometheus would. Runs alternate off/on (each round swapping
which goes first), so a machine whose load drifts affects both alike; each mode's median is reported.

Reported per mode: messages delivered per second, and the hub process's CPU time (all
threads, from ``/proc``) per delivered message, which is steadier than wall-clock throughput
on a shared machine; plus how many scrapes ran and their median time. Last, the CPU time one
scrape costs the hub: from 200 scrapes of an idle hub holding a few hundred connections, and
from bursts of scrapes while a steady load runs. At one scrape a second that is what metrics
take from the broker, a figure the run-to-run noise of a shared machine cannot hide.

Usage::

    .venv/bin/python bench/metrics_bench.py                  # 3 rounds of each mode
    .venv/bin/python bench/metrics_bench.py --rounds 5 --messages 200000
    .venv/bin/python bench/metrics_bench.py --rate 5000 --messages 50000  # CPU per message at a fixed rate
    .venv/bin/python bench/metrics_bench.py --control     # both columns off: how far equal runs differ here
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from loadgen import Flow, hold_idle, run_flow
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.hubproc import run_hub

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class Scraper:
    """Reads ``/metrics`` every ``interval`` seconds in a thread until stopped."""

    url: str
    interval: float = 1.0
    durations: list[float] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.interval):
                started = time.perf_counter()
                try:
                    response = client.get(self.url)
                    response.raise_for_status()
                    sum(1 for _ in text_string_to_metric_families(response.text))
                except httpx.HTTPError:
                    self.failures += 1
                    continue
                self.durations.append(time.perf_counter() - started)


@dataclass
class Run:
    """One load against one hub."""

    metrics: bool
    rate: float
    cpu_us_per_message: float
    scrapes: int
    scrape_ms: float
    errors: list[str]


def one_run(metrics: bool, flow: Flow) -> Run:
    """Start a hub, push ``flow`` through it (scraping when ``metrics``), stop it."""
    env = {
        "MQTTHUB_ALLOW_ANONYMOUS": "true",
        "MQTTHUB_LOG_LEVEL": "warning",
        "MQTTHUB_METRICS_ENABLED": "true" if metrics else "false",
        "MQTTHUB_WS_ENABLED": "false",
    }
    with (
        tempfile.TemporaryDirectory(prefix="mqtthub-metrics-bench-") as workdir,
        run_hub(Path(workdir), env=env, wait_for=("HTTP API", "MQTT")) as hub,
    ):
        # First requests pay one-off costs (imports, route set-up) that are not the metrics' steady cost.
        httpx.get(hub.http_url + "/health", timeout=30)
        scraper = Scraper(hub.http_url + "/metrics")
        if metrics:
            httpx.get(scraper.url, timeout=30).raise_for_status()
            scraper.start()
        cpu_before = cpu_seconds(hub.process.pid)
        try:
            result = run_flow(hub.port("MQTT"), flow)
        finally:
            scraper.stop()
        cpu = cpu_seconds(hub.process.pid) - cpu_before
        hub.stop()
    delivered = max(result.delivered, 1)
    return Run(
        metrics=metrics,
        rate=result.rate,
        cpu_us_per_message=cpu / delivered * 1e6,
        scrapes=len(scraper.durations),
        scrape_ms=statistics.median(scraper.durations) * 1000 if scraper.durations else 0.0,
        errors=result.errors + ([f"{scraper.failures} scrapes failed"] if scraper.failures else []),
    )


def scrape_cost_under_load(rate: float, publishers: int, repeats: int = 3, burst: int = 100) -> float:
    """Milliseconds of hub CPU per scrape while a steady QoS 1 load at ``rate`` runs (median of ``repeats``).

    Each repeat measures the hub's CPU rate for 3 s, then runs ``burst`` scrapes back to back and
    charges them what the hub used above that rate. A burst makes the scrapes' cost stand out of
    the machine's noise, which a comparison of whole runs cannot.
    """
    env = {"MQTTHUB_ALLOW_ANONYMOUS": "true", "MQTTHUB_LOG_LEVEL": "warning", "MQTTHUB_WS_ENABLED": "false"}
    seconds = repeats * 8 + 10
    flow = Flow(
        publishers,
        1,
        1,
        int(rate * seconds),
        "bench/p/{i}",
        "bench/p/+",
        subscribe_qos=1,
        rate=rate,
        publisher_procs=2,
        timeout=seconds + 60,
    )
    costs: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="mqtthub-metrics-bench-") as workdir,
        run_hub(Path(workdir), env=env, wait_for=("HTTP API", "MQTT")) as hub,
        httpx.Client(timeout=30) as client,
    ):
        pid, url = hub.process.pid, hub.http_url + "/metrics"
        client.get(url).raise_for_status()
        load = threading.Thread(target=run_flow, args=(hub.port("MQTT"), flow), daemon=True)
        load.start()
        time.sleep(4.0)  # connections made, load steady
        for _ in range(repeats):
            before, started = cpu_seconds(pid), time.monotonic()
            time.sleep(3.0)
            baseline = (cpu_seconds(pid) - before) / (time.monotonic() - started)
            before, started = cpu_seconds(pid), time.monotonic()
            for _ in range(burst):
                client.get(url).raise_for_status()
            used = cpu_seconds(pid) - before - baseline * (time.monotonic() - started)
            costs.append(used / burst * 1000)
        load.join(seconds + 90)
        hub.stop()
    return statistics.median(costs)


def scrape_cost(connections: int = 300, scrapes: int = 200) -> float:
    """Milliseconds of hub CPU per scrape of ``/metrics``, on an idle hub with ``connections`` MQTT clients."""
    env = {"MQTTHUB_ALLOW_ANONYMOUS": "true", "MQTTHUB_LOG_LEVEL": "warning", "MQTTHUB_WS_ENABLED": "false"}
    with (
        tempfile.TemporaryDirectory(prefix="mqtthub-metrics-bench-") as workdir,
        run_hub(Path(workdir), env=env, wait_for=("HTTP API", "MQTT")) as hub,
    ):
        pid = hub.process.pid

        def measure(_held: int) -> float:
            with httpx.Client(timeout=10) as client:
                client.get(hub.http_url + "/metrics").raise_for_status()  # warm
                before = cpu_seconds(pid)
                for _ in range(scrapes):
                    client.get(hub.http_url + "/metrics").raise_for_status()
                return (cpu_seconds(pid) - before) / scrapes * 1000

        _held, cost, _errors = hold_idle(hub.port("MQTT"), connections, measure)
        hub.stop()
    return cost


def machine() -> str:
    """CPU model, cores and load when the benchmark started."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "unknown CPU",
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {load} at start"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode, alternating")
    parser.add_argument("--messages", type=int, default=150_000, help="messages per run and QoS")
    parser.add_argument("--publishers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.0, help="total msg/s of each load; 0 = as fast as it goes")
    parser.add_argument(
        "--control", action="store_true", help="run the 'on' runs with metrics off too: the noise between equal runs"
    )
    args = parser.parse_args(argv)
    flows = {
        qos: Flow(
            args.publishers,
            1,
            qos,
            args.messages,
            "bench/p/{i}",
            "bench/p/+",
            subscribe_qos=qos,
            rate=args.rate,
            publisher_procs=2,
            timeout=120,
        )
        for qos in (1, 0)
    }
    print(f"machine: {machine()}")

    def label(metrics: bool) -> str:
        return ("off (control)" if args.control else "on") if metrics else "off"

    print("| load | metrics | msg/s (median) | hub CPU µs/msg (median) | scrapes (1/s), median time | runs |")
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for qos, flow in flows.items():
        runs: dict[bool, list[Run]] = {False: [], True: []}
        for round_number in range(args.rounds):
            # Each round swaps which mode goes first, so neither always follows the other's teardown.
            for metrics in (False, True) if round_number % 2 == 0 else (True, False):
                run = one_run(metrics and not args.control, flow)
                for error in run.errors:
                    print(f"  (qos {qos}, metrics {'on' if metrics else 'off'}: {error})", file=sys.stderr)
                runs[metrics].append(run)
        medians = {
            metrics: (statistics.median(r.rate for r in done), statistics.median(r.cpu_us_per_message for r in done))
            for metrics, done in runs.items()
        }
        pace = f" at {args.rate:,.0f} msg/s" if args.rate else ""
        load = f"QoS {qos}, {args.publishers} publishers → 1 wildcard subscriber, {args.messages:,} msgs{pace}"
        for metrics in (False, True):
            rate, cpu = medians[metrics]
            done = runs[metrics]
            scrape_count = statistics.median(r.scrapes for r in done)
            scraped = metrics and not args.control
            scrapes = f"{scrape_count:.0f}, {statistics.median(r.scrape_ms for r in done):.1f} ms" if scraped else "-"
            print(f"| {load} | {label(metrics)} | {rate:,.0f} | {cpu:.1f} | {scrapes} | {len(done)} |")
        (off_rate, off_cpu), (on_rate, on_cpu) = medians[False], medians[True]
        rate_change, cpu_change = 100 * (on_rate / off_rate - 1), 100 * (on_cpu / off_cpu - 1)
        print(f"| {load} | {label(True)} vs off | {rate_change:+.1f}% | {cpu_change:+.1f}% | | |")
        for metrics in (False, True):
            each = ", ".join(f"{r.rate:,.0f} ({r.cpu_us_per_message:.1f} µs)" for r in runs[metrics])
            print(f"  QoS {qos} metrics {label(metrics)}, each run: {each}", file=sys.stderr)
    print(f"one scrape of an idle hub with 300 MQTT connections: {scrape_cost():.2f} ms of hub CPU")
    loaded = scrape_cost_under_load(5000, args.publishers)
    print(f"one scrape while the hub carries QoS 1 at 5,000 msg/s: {loaded:.2f} ms of hub CPU")


if __name__ == "__main__":
    main()
