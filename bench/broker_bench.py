"""Broker benchmark: the same scenarios against the embedded broker and Debian's mosquitto, in one run.

Usage (or ``scripts/bench``)::

    python bench/broker_bench.py [--quick] [--repeat N] [--only KEY ...] [--no-write] [--profile DIR]

For each scenario, each broker is started fresh as its own process (mosquitto,
then the embedded broker on the default asyncio loop, then on uvloop when it is
installed), loaded by ``bench/loadgen.py``, and stopped. The results are printed
as a Markdown table with the ratio mqtthub/mosquitto per scenario and written
between the ``bench`` markers of ``docs/benchmarks.md``.

``--quick`` runs a tenth of the load (a smoke test, not a measurement).
``--profile DIR`` instead runs only the embedded broker (asyncio), under
cProfile, and prints where its time goes per scenario.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brokers import RunningBroker, Target, cpu_seconds, mosquitto_version, rss_kib, started
from loadgen import Flow, FlowResult, hold_idle, run_flow
from report import finite, save, update
from run_broker import raise_open_files_limit

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"
IDLE_CONNECTIONS = 10_000
LATENCY_RATE = 2_000
LATENCY_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Scenario:
    """One row of the table."""

    key: str
    title: str
    kind: str
    """``throughput`` (msg/s, higher is better), ``latency`` (ms) or ``memory`` (KiB per connection)."""
    target: str
    check: Callable[[float, float], bool]
    """(mqtthub figure, ratio to mosquitto) -> target met."""
    flow: Flow | None = None


SCENARIOS = (
    Scenario(
        "qos0-1to1",
        "QoS 0, 1 publisher → 1 subscriber",
        "throughput",
        "ratio ≥ 1.0",
        lambda value, ratio: ratio >= 1.0,
        Flow(1, 1, 0, 400_000, "bench/one", "bench/one"),
    ),
    Scenario(
        "qos1-1to1",
        "QoS 1, 1 publisher → 1 subscriber",
        "throughput",
        "ratio ≥ 1.0",
        lambda value, ratio: ratio >= 1.0,
        Flow(1, 1, 1, 150_000, "bench/one", "bench/one", subscribe_qos=1),
    ),
    Scenario(
        "qos0-10to1",
        "QoS 0, 10 publishers → 1 wildcard subscriber",
        "throughput",
        "ratio ≥ 1.0",
        lambda value, ratio: ratio >= 1.0,
        Flow(10, 1, 0, 400_000, "bench/p/{i}", "bench/p/+", publisher_procs=2),
    ),
    Scenario(
        "qos0-1to10",
        "QoS 0, 1 publisher → 10 subscribers",
        "throughput",
        "ratio ≥ 1.0",
        lambda value, ratio: ratio >= 1.0,
        Flow(1, 10, 0, 60_000, "bench/fan", "bench/fan", subscriber_procs=2),
    ),
    Scenario(
        "devices",
        "QoS 1, 100 devices (1 in flight each) → 1 wildcard subscriber",
        "throughput",
        "ratio ≥ 1.0",
        lambda value, ratio: ratio >= 1.0,
        Flow(
            100,
            1,
            1,
            60_000,
            "bench/dev/{i}/data",
            "bench/dev/+/data",
            subscribe_qos=1,
            inflight=1,
            publisher_procs=2,
        ),
    ),
    Scenario(
        "latency",
        f"Latency p50 / p99 at {LATENCY_RATE:,} msg/s, QoS 0, 1 → 1",
        "latency",
        "p99 ≤ mosquitto's",
        lambda value, ratio: ratio <= 1.0,
        Flow(
            1,
            1,
            0,
            LATENCY_RATE * LATENCY_SECONDS,
            "bench/lat",
            "bench/lat",
            rate=LATENCY_RATE,
            latency=True,
        ),
    ),
    Scenario(
        "memory",
        f"Memory per idle connection, {IDLE_CONNECTIONS:,} connections",
        "memory",
        "≤ 3 KiB",
        lambda value, ratio: value <= 3.0,
    ),
)


@dataclass(slots=True)
class Measurement:
    """One scenario against one broker: the headline figure and what else is worth printing."""

    value: float
    detail: str = ""
    shortfall: str = ""
    cpu_us: float = float("nan")
    """Broker CPU time (user + system) per message received by the subscribers, in microseconds."""
    p50: float = float("nan")
    """Latency scenarios: the median in ms (``value`` holds the p99)."""


def _percentile(sorted_values: list[int], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def _shortfall(result: FlowResult) -> str:
    notes = list(dict.fromkeys(result.errors))[:2]
    if result.delivered < result.expected:
        published = f" ({result.published:,} published)" if result.published < result.expected else ""
        notes.insert(0, f"received {result.delivered:,} of {result.expected:,}{published}")
    return "; ".join(notes)


def measure(scenario: Scenario, target: Target, quick: bool, profile_dir: Path | None) -> Measurement:
    """Start the broker, run one scenario against it, stop it."""
    profile = profile_dir / f"{scenario.key}.prof" if profile_dir is not None else None
    with started(target, profile=profile) as broker:
        time.sleep(0.3)
        if scenario.kind == "memory":
            return _measure_memory(broker, IDLE_CONNECTIONS // 10 if quick else IDLE_CONNECTIONS)
        assert scenario.flow is not None
        flow = scenario.flow
        if quick:
            flow = replace(flow, messages=max(flow.messages // 10, flow.publishers))
        cpu_before = cpu_seconds(broker.pid)
        result = run_flow(broker.port, flow)
        cpu_used = cpu_seconds(broker.pid) - cpu_before
    cpu_us = cpu_used / result.delivered * 1e6 if result.delivered else float("nan")
    shortfall = _shortfall(result)
    # The embedded broker reports what it dropped on purpose when its queue bounds were reached.
    dropped = [
        f"{broker.final_stats[name]:,} dropped by the broker ({name})"
        for name in ("qos0_dropped", "queue_dropped")
        if broker.final_stats.get(name)
    ]
    if dropped:
        shortfall = "; ".join(part for part in (shortfall, *dropped) if part)
    if scenario.kind == "latency":
        # The first second is warm-up (connections, caches, the loop's first timers).
        samples = sorted(result.latencies_ns[LATENCY_RATE:] or result.latencies_ns)
        if not samples:
            return Measurement(float("nan"), shortfall=shortfall or "no samples")
        p50, p99 = _percentile(samples, 0.50) / 1e6, _percentile(samples, 0.99) / 1e6
        return Measurement(p99, f"{p50:.3f} / {p99:.3f}", shortfall, cpu_us, p50)
    rate = result.rate if result.delivered else float("nan")
    return Measurement(rate, f"{result.delivered:,} msgs in {result.seconds:.2f} s", shortfall, cpu_us)


def _measure_memory(broker: RunningBroker, connections: int) -> Measurement:
    before = rss_kib(broker.pid)
    opened, after, errors = hold_idle(broker.port, connections, lambda _: rss_kib(broker.pid))
    if not opened:
        return Measurement(float("nan"), shortfall="; ".join(errors[:2]) or "no connection opened")
    short = f"opened {opened:,} of {connections:,}; " + "; ".join(errors[:2]) if opened < connections else ""
    detail = f"RSS {before / 1024:.1f} → {after / 1024:.1f} MiB"
    return Measurement((after - before) / opened, detail, short)


def _best(kind: str, runs: list[Measurement]) -> Measurement:
    # A run in which every message arrived beats a lossy one; then the best figure counts.
    valid = [m for m in runs if m.value == m.value]
    if not valid:
        return runs[0]
    valid = [m for m in valid if not m.shortfall] or valid
    higher_is_better = kind == "throughput"
    return max(valid, key=lambda m: m.value) if higher_is_better else min(valid, key=lambda m: m.value)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        uvloop_version = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop_version = "not installed"
    return {
        "CPU": f"{model}, {os.cpu_count()} cores",
        "Kernel": platform.release(),
        "Python": platform.python_version(),
        "uvloop": uvloop_version,
        "mosquitto": mosquitto_version(),
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _format(kind: str, m: Measurement) -> str:
    if m.value != m.value:
        return "failed"
    if kind == "throughput":
        return f"{m.value:,.0f}"
    if kind == "latency":
        return m.detail
    return f"{m.value:.1f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _results_table(results: dict[str, dict[str, Measurement]], ours: list[Target]) -> list[str]:
    units = {"throughput": "msg/s received", "latency": "ms", "memory": "KiB"}
    header = ["Scenario", "Unit", "mosquitto"]
    for target in ours:
        header += [target.label, "ratio"]
    header += ["Target", "Met"]
    lines = [_row(header), _row(["---"] * len(header))]
    for scenario in SCENARIOS:
        row_results = results.get(scenario.key)
        if not row_results:
            continue
        reference = row_results["mosquitto"]
        cells = [scenario.title, units[scenario.kind], _format(scenario.kind, reference)]
        met: list[str] = []
        for target in ours:
            mine = row_results[target.key]
            ratio = mine.value / reference.value if reference.value else float("nan")
            cells += [_format(scenario.kind, mine), f"{ratio:.2f}" if ratio == ratio else "n/a"]
            ok = ratio == ratio and scenario.check(mine.value, ratio)
            verdict = ("yes" if ok else "no") + (" (lossy)" if mine.shortfall and scenario.kind != "memory" else "")
            met.append(f"{target.key.removeprefix('mqtthub-')}: {verdict}")
        cells += [scenario.target, "; ".join(met)]
        lines.append(_row(cells))
    return lines


def _cpu_table(results: dict[str, dict[str, Measurement]], targets: list[Target]) -> list[str]:
    header = ["Scenario", *(target.label for target in targets)]
    lines = [_row(header), _row(["---"] * len(header))]
    for scenario in SCENARIOS:
        row_results = results.get(scenario.key)
        if not row_results or scenario.kind == "memory":
            continue
        cells = [scenario.title]
        for target in targets:
            cpu = row_results[target.key].cpu_us
            cells.append(f"{cpu:.1f}" if cpu == cpu else "n/a")
        lines.append(_row(cells))
    return lines


def render(
    results: dict[str, dict[str, Measurement]],
    targets: list[Target],
    info: dict[str, str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    quick: bool,
    repeat: int,
) -> str:
    """The Markdown block written to docs/benchmarks.md."""
    start_load, end_load = load
    out = [
        START_MARK,
        "",
        "| Machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| Load average (1/5/15 min) | {_loads(start_load)} at start, {_loads(end_load)} at the end |",
        "",
    ]
    if quick:
        out += ["**Quick run (a tenth of the load): a smoke test, not a measurement.**", ""]
    busiest = max(start_load[0], end_load[0])
    if busiest >= 1.0:
        out += [
            f"**Busy machine:** the benchmark shared these {os.cpu_count()} cores with other work (1-minute load"
            f" average {start_load[0]:.1f} at the start, {end_load[0]:.1f} at the end, the benchmark's own processes"
            " included). Absolute figures are lower and noisier than on an idle machine; the brokers took turns"
            " under the same conditions, so the ratios and the CPU cost per message below are the fairer comparison.",
            "",
        ]
    out += _results_table(results, [t for t in targets if not t.is_mosquitto])
    out += [
        "",
        f"Throughput and latency: best of {repeat} run(s) per broker, a run without loss before a lossy one."
        " Ratio = mqtthub / mosquitto (for latency, of the p99; for memory, of KiB per connection: lower is better"
        ' for both). "lossy": not every message arrived (see the notes below); throughput counts only what did.',
        "",
        "Broker CPU time (user + system) per message received by the subscribers, in µs (lower is better):",
        "",
        *_cpu_table(results, targets),
    ]
    notes: list[str] = []
    for scenario in SCENARIOS:
        for key, m in results.get(scenario.key, {}).items():
            if m.shortfall:
                notes.append(f"- {scenario.title}, {key}: {m.shortfall}")
            if scenario.kind == "memory" and m.detail:
                notes.append(f"- {scenario.title}, {key}: {m.detail}")
    if notes:
        out += ["", *notes]
    out += ["", END_MARK]
    return "\n".join(out)


def run_data(
    results: dict[str, dict[str, Measurement]],
    targets: list[Target],
    info: dict[str, str],
    load: tuple[tuple[float, ...], tuple[float, ...]],
    repeat: int,
) -> dict[str, Any]:
    """The run as data (``docs/bench/broker.json``), from which bench/report.py draws the plots and the summary."""
    return {
        "machine": info,
        "load": {"start": list(load[0]), "end": list(load[1])},
        "repeat": repeat,
        "brokers": {target.key: target.label for target in targets},
        "scenarios": [{"key": s.key, "title": s.title, "kind": s.kind} for s in SCENARIOS if s.key in results],
        "results": {
            key: {
                broker: {
                    "value": finite(m.value),
                    "p50": finite(m.p50),
                    "cpu_us": finite(m.cpu_us),
                    "detail": m.detail,
                    "shortfall": m.shortfall,
                }
                for broker, m in row.items()
            }
            for key, row in results.items()
        },
    }


def _loads(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def write_doc(block: str) -> None:
    """Replace the generated block of docs/benchmarks.md (creating the file if needed)."""
    text = DOC.read_text() if DOC.exists() else f"# Broker benchmark\n\n{START_MARK}\n{END_MARK}\n"
    if START_MARK not in text or END_MARK not in text:
        text = text.rstrip("\n") + f"\n\n{START_MARK}\n{END_MARK}\n"
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(head + block + tail)


def print_profile(path: Path, limit: int = 25) -> None:
    """Top functions by own time, then by cumulative time."""
    stats = pstats.Stats(str(path))
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the table, write the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the load (smoke test)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per broker and scenario; the best counts")
    parser.add_argument("--only", nargs="+", choices=[s.key for s in SCENARIOS], help="scenarios to run")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="profile the embedded broker instead")
    parser.add_argument("--no-uvloop", action="store_true", help="skip the embedded broker on uvloop")
    args = parser.parse_args(argv)
    raise_open_files_limit()
    scenarios = [s for s in SCENARIOS if not args.only or s.key in args.only]

    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        target = Target("mqtthub-asyncio", "mqtthub (asyncio)")
        for scenario in scenarios:
            m = measure(scenario, target, args.quick, args.profile)
            print(f"\n=== {scenario.title}: {_format(scenario.kind, m)} (under cProfile) {m.shortfall}")
            print_profile(args.profile / f"{scenario.key}.prof")
        return 0

    targets = [Target("mosquitto", "mosquitto"), Target("mqtthub-asyncio", "mqtthub (asyncio)")]
    try:
        import uvloop  # noqa: F401

        if not args.no_uvloop:
            targets.append(Target("mqtthub-uvloop", "mqtthub (uvloop)", uvloop=True))
    except ImportError:
        print("uvloop is not installed (pip install 'mqtthub[speed]'): the uvloop column is skipped", file=sys.stderr)
    info = machine()
    start_load = os.getloadavg()
    began = time.monotonic()
    results: dict[str, dict[str, Measurement]] = {}
    for scenario in scenarios:
        row = results[scenario.key] = {}
        repeat = 1 if scenario.kind == "memory" else max(1, args.repeat)
        runs: dict[str, list[Measurement]] = {t.key: [] for t in targets}
        for _ in range(repeat):
            # Brokers take turns within each repetition, so a burst of load from elsewhere hits all of them.
            for target in targets:
                m = measure(scenario, target, args.quick, None)
                runs[target.key].append(m)
                print(f"{scenario.key:>12} {target.label:<18} {_format(scenario.kind, m):>16} {m.shortfall}")
        for key, measured in runs.items():
            row[key] = _best(scenario.kind, measured)
    block = render(results, targets, info, (start_load, os.getloadavg()), args.quick, max(1, args.repeat))
    print()
    print(block)
    print(f"\n({time.monotonic() - began:.0f} s)")
    if not args.no_write:
        write_doc(block)
        print(f"written to {DOC}")
        if not args.quick:
            run = run_data(results, targets, info, (start_load, os.getloadavg()), max(1, args.repeat))
            print(f"written to {save('broker', run)}")
            for path in update():
                print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
