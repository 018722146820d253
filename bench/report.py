"""Benchmark report: stored results as data, SVG plots and the summary against the targets, from that data alone.

Usage (or ``scripts/bench --plots-only``)::

    python bench/report.py [--data DIR] [--out DIR] [--no-doc]

Each benchmark stores its last full run as JSON in ``docs/bench/`` (``broker.json`` from ``bench/broker_bench.py``,
``connections.json`` from ``bench/connect_bench.py``, ``telemetry.json`` from ``bench/telemetry_bench.py --write``)
and then calls :func:`update`, which re-renders every plot into ``docs/`` and the summary block of
``docs/benchmarks.md`` from whatever results are stored. Running this module alone does the same without any load,
so plots and summary can be redrawn (after a change here, or from results measured elsewhere) in a second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svg import Series, bar_chart, line_chart

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "docs" / "bench"
PLOT_DIR = ROOT / "docs"
DOC = ROOT / "docs" / "benchmarks.md"
START_MARK = "<!-- summary:start -->"
END_MARK = "<!-- summary:end -->"
SOURCES = {
    "broker": "Broker benchmark (`scripts/bench`)",
    "connections": "Connections benchmark (`scripts/bench connections`)",
    "telemetry": "Telemetry benchmark (`bench/telemetry_bench.py --write`)",
    "authbackend": "Auth backend benchmark (`bench/authbackend_bench.py --write`)",
    "external": "External mode ingest benchmark (`scripts/bench external --write`)",
    "console": "Console page benchmark (`scripts/bench console --write`)",
}
MOSQUITTO = "mosquitto"
INGEST_TARGETS = {"sqlite": 25_000.0, "postgresql": 30_000.0}
"""Acknowledged msg/s flat out, 50 devices, per database."""
INGEST_P99_MS = 20.0
INGEST_P99_RATE = 5_000.0
"""The offered rate (msg/s) at which the p99 acknowledgement latency is held to INGEST_P99_MS."""
AUTH_BACKEND_RATE = 2_000.0
AUTH_BACKEND_P99_MS = 5.0
"""The checks per second at which the auth backend's p99 latency is held to AUTH_BACKEND_P99_MS."""
CONSOLE_P95_MS = 200.0
"""Every console page answers within this (p95, server side) with 10,000 devices and 1M readings."""
CONNECTS_RATIO = 0.8
KIB_PER_CONNECTION = 3.0
AFTER_CLOSE = 1.2
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
BROKER_TARGETS = {"throughput": "ratio ≥ 1.0", "latency": "p99 ≤ Mosquitto's", "memory": "≤ 3 KiB"}
CONNECTION_TARGETS = {
    "rate": f"ratio ≥ {CONNECTS_RATIO}",
    "storm": "all CONNACKs within 10 s",
    "memory": "≤ 3 KiB, RSS after close within 20 %",
}
PLOTS = {
    "bench-throughput.svg": "Broker throughput per scenario, mqtthub beside Mosquitto",
    "bench-latency.svg": "Broker latency percentiles, mqtthub beside Mosquitto",
    "bench-connects.svg": "Connects per second, mqtthub serve beside Mosquitto",
    "bench-memory.svg": "Memory per idle connection against the number of connections",
    "bench-telemetry.svg": "Telemetry ingest per database",
    "bench-telemetry-latency.svg": "Telemetry acknowledgement latency percentiles per database",
}
"""Every plot the report can draw (file in docs/ → what it shows), in the order the summary shows them."""

Results = dict[str, dict[str, Any]]
"""Benchmark name (``broker``, ``connections``, ``telemetry``) → its stored run."""


def finite(value: float) -> float | None:
    """A measured figure as JSON can hold it: NaN (not measured, failed) becomes null."""
    return value if math.isfinite(value) else None


def save(name: str, run: dict[str, Any], directory: Path = DATA_DIR) -> Path:
    """Store one benchmark's run as ``<directory>/<name>.json`` (replacing the previous run)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(run, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def load(directory: Path = DATA_DIR) -> Results:
    """Every stored run in ``directory``, by benchmark name."""
    return {
        name: json.loads((directory / f"{name}.json").read_text())
        for name in SOURCES
        if (directory / f"{name}.json").exists()
    }


# --- plots ---------------------------------------------------------------------------------------------------------


def _broker_series(run: dict[str, Any], keys: list[str]) -> list[Series]:
    def figure(measured: dict[str, Any] | None) -> float | str | None:
        return None if measured is None else measured.get("value") or "failed"

    return [
        (label, [figure(run["results"].get(key, {}).get(broker)) for key in keys])
        for broker, label in run["brokers"].items()
    ]


def _scenarios(run: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in run["scenarios"] if s["kind"] == kind and s["key"] in run["results"]]


def _broker_plots(run: dict[str, Any]) -> Iterator[tuple[str, str]]:
    throughput = _scenarios(run, "throughput")
    if throughput:
        yield (
            "bench-throughput.svg",
            bar_chart(
                "Broker throughput per scenario (higher is better)",
                "msg/s received by the subscribers",
                [s["title"] for s in throughput],
                _broker_series(run, [s["key"] for s in throughput]),
            ),
        )
    for scenario in _scenarios(run, "latency"):
        yield (
            "bench-latency.svg",
            bar_chart(
                f"Broker latency {scenario['title'].removeprefix('Latency p50 / p99 ')} (lower is better)",
                "ms from publisher write to subscriber receipt",
                ["p50", "p99"],
                [
                    (label, [measured.get("p50"), measured.get("value")])
                    for broker, label in run["brokers"].items()
                    for measured in [run["results"][scenario["key"]].get(broker, {})]
                ],
            ),
        )


def _connects_per_second(scenario: dict[str, Any], measured: dict[str, Any] | None) -> float | str:
    if measured is None:
        return (
            "not run (Mosquitto has no such tokens)" if scenario.get("credentials", "anonymous") != "anonymous" else ""
        )
    if measured.get("value") is None:
        return "failed"
    if scenario["kind"] == "rate":
        return float(measured["value"])
    # A storm stores the time to its last CONNACK; a rate only means something when every client got one.
    if not measured.get("ok") or measured["value"] <= 0:
        return "not every CONNACK within 10 s"
    return float(scenario["clients"] / measured["value"])


def _connection_plots(run: dict[str, Any]) -> Iterator[tuple[str, str]]:
    admission = [s for s in run["scenarios"] if s["kind"] in ("rate", "storm") and s["key"] in run["results"]]
    if admission:
        yield (
            "bench-connects.svg",
            bar_chart(
                "Connection admission: CONNACKs per second (higher is better)",
                "connects/s (storms: clients / time to the last CONNACK)",
                [s["title"] for s in admission],
                [
                    (label, [_connects_per_second(s, run["results"][s["key"]].get(broker)) for s in admission])
                    for broker, label in run["brokers"].items()
                ],
            ),
        )
    memory = _scenarios(run, "memory")
    if memory:
        yield (
            "bench-memory.svg",
            line_chart(
                "Memory per idle connection against the number of connections (lower is better)",
                "idle connections",
                "KiB per connection",
                [
                    (
                        label,
                        [
                            (float(s["clients"]), float(m["value"]))
                            for s in memory
                            for m in [run["results"][s["key"]].get(broker, {})]
                            if m.get("value") is not None
                        ],
                    )
                    for broker, label in run["brokers"].items()
                ],
                ("target ≤ 3 KiB", KIB_PER_CONNECTION),
            ),
        )


def _telemetry_plots(run: dict[str, Any]) -> Iterator[tuple[str, str]]:
    flat_out = [row for row in run["rows"] if not row["rate"]]
    if flat_out:
        yield (
            "bench-telemetry.svg",
            bar_chart(
                f"Telemetry ingest, {run['devices']} devices, QoS 1 acknowledged after commit (higher is better)",
                "acknowledged msg/s, flat out",
                [DATABASES[row["database"]] for row in flat_out],
                [
                    ("target", [INGEST_TARGETS[row["database"]] for row in flat_out]),
                    ("mqtthub", [row["acked_rate"] for row in flat_out]),
                ],
            ),
        )
    yield from _telemetry_latency(run)


def _telemetry_latency(run: dict[str, Any]) -> Iterator[tuple[str, str]]:
    paced = [row for row in run["rows"] if row["rate"] == INGEST_P99_RATE]
    if paced:
        yield (
            "bench-telemetry-latency.svg",
            bar_chart(
                f"Telemetry acknowledgement latency at {INGEST_P99_RATE:,.0f} msg/s, {run['devices']} devices"
                " (lower is better)",
                "ms from PUBLISH to PUBACK (after commit)",
                [DATABASES[row["database"]] for row in paced],
                [(name, [row[name] for row in paced]) for name in ("p50", "p99", "max")],
                (f"target p99 ≤ {INGEST_P99_MS:.0f} ms", INGEST_P99_MS),
            ),
        )


def plots(results: Results, out_dir: Path = PLOT_DIR) -> list[Path]:
    """Render the plots the stored results allow into ``out_dir``; returns the files written."""
    renderers = {"broker": _broker_plots, "connections": _connection_plots, "telemetry": _telemetry_plots}
    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, render in renderers.items():
        if name in results:
            for filename, svg in render(results[name]):
                path = out_dir / filename
                path.write_text(svg)
                written.append(path)
    return written


# --- summary against the targets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One row of the summary: a figure held against its target."""

    what: str
    measured: str
    target: str
    met: bool | None
    """None: not measured (the stored run lacks it, or it failed)."""


def _ratio(mine: float | None, reference: float | None) -> float | None:
    return mine / reference if mine is not None and reference else None


def _broker_checks(run: dict[str, Any]) -> Iterator[Check]:
    ours = {key: label for key, label in run["brokers"].items() if key != MOSQUITTO}
    for scenario in run["scenarios"]:
        row = run["results"].get(scenario["key"])
        if not row:
            continue
        reference = row.get(MOSQUITTO, {}).get("value")
        for key, label in ours.items():
            mine = row.get(key, {}).get("value")
            what = f"{scenario['title']}, {label} (broker alone)"
            if mine is None:
                # A run that produced no figure has not shown the target met.
                yield Check(what, "failed", BROKER_TARGETS[scenario["kind"]], False)
            elif scenario["kind"] == "throughput":
                ratio = _ratio(mine, reference)
                shown = f"{mine:,.0f} vs {reference:,.0f} msg/s: ratio {ratio:.2f}" if ratio is not None else "failed"
                yield Check(what, shown, BROKER_TARGETS["throughput"], None if ratio is None else ratio >= 1.0)
            elif scenario["kind"] == "latency":
                shown = f"p99 {mine:.3f} ms" + (f" vs {reference:.3f} ms" if reference is not None else "")
                yield Check(what, shown, BROKER_TARGETS["latency"], None if reference is None else mine <= reference)
            elif scenario["kind"] == "memory":
                shown = f"{mine:.1f} KiB" + (f" (Mosquitto {reference:.1f})" if reference is not None else "")
                yield Check(what, shown, BROKER_TARGETS["memory"], mine <= KIB_PER_CONNECTION)


def _connection_checks(run: dict[str, Any]) -> Iterator[Check]:
    anonymous = run["results"].get("rate-anonymous", {}).get(MOSQUITTO, {}).get("value")
    ours = {key: label for key, label in run["brokers"].items() if key != MOSQUITTO}
    for scenario in run["scenarios"]:
        row = run["results"].get(scenario["key"])
        if not row:
            continue
        reference = row.get(MOSQUITTO, {}).get("value", anonymous)
        for key, label in ours.items():
            m = row.get(key, {})
            value, ok = m.get("value"), bool(m.get("ok"))
            what, target = f"{scenario['title']}, {label}", CONNECTION_TARGETS[scenario["kind"]]
            if value is None:
                yield Check(what, "failed", target, False)
            elif scenario["kind"] == "rate":
                ratio = _ratio(value, reference)
                shown = f"{value:,.0f}/s" + (f", ratio {ratio:.2f} to Mosquitto's {reference:,.0f}/s" if ratio else "")
                yield Check(what, shown, target, ratio is not None and ratio >= CONNECTS_RATIO and ok)
            elif scenario["kind"] == "storm":
                shown = f"last CONNACK after {value:.2f} s" if ok else "not every client got its CONNACK in time"
                yield Check(what, shown, target, ok)
            else:
                after = m.get("after_close")
                shown = f"{value:.1f} KiB" + (
                    f", RSS after close {after:.2f} times the start" if after is not None else ""
                )
                met = value <= KIB_PER_CONNECTION and after is not None and after <= AFTER_CLOSE and ok
                yield Check(what, shown, target, met)


def _telemetry_checks(run: dict[str, Any]) -> Iterator[Check]:
    for row in run["rows"]:
        name = DATABASES[row["database"]]
        if not row["rate"]:
            target = INGEST_TARGETS[row["database"]]
            met = row["acked_rate"] >= target and row["rows_ok"]
            yield Check(
                f"Telemetry ingest, {name}, {run['devices']} devices, flat out",
                f"{row['acked_rate']:,.0f} msg/s",
                f"≥ {target:,.0f} msg/s",
                met,
            )
        elif row["rate"] == INGEST_P99_RATE:
            yield Check(
                f"Telemetry p99 acknowledgement latency, {name}, at {INGEST_P99_RATE:,.0f} msg/s",
                "failed" if row["p99"] is None else f"{row['p99']:.1f} ms",
                f"≤ {INGEST_P99_MS:.0f} ms",
                row["p99"] is not None and row["p99"] <= INGEST_P99_MS and row["rows_ok"],
            )


def _authbackend_checks(run: dict[str, Any]) -> Iterator[Check]:
    result = run["result"]
    port = "its own port" if run.get("port") == "own" else "the HTTP API's port"
    achieved = result["achieved_rate"]
    # A run that could not keep up with the offered rate has not shown the latency at that rate.
    kept_up = achieved >= 0.98 * run["rate"] and run["rate"] >= AUTH_BACKEND_RATE
    yield Check(
        f"Auth backend checks, p99 at {run['rate']:,.0f} checks/s, on {port}",
        f"p99 {result['p99']:.2f} ms, {achieved:,.0f} checks/s achieved, "
        f"{result['hub_cpu_ms_per_check']:.2f} ms of hub CPU per check, {result['wrong']} wrong answers",
        f"p99 ≤ {AUTH_BACKEND_P99_MS:.0f} ms at {AUTH_BACKEND_RATE:,.0f} checks/s",
        kept_up and result["p99"] <= AUTH_BACKEND_P99_MS and result["wrong"] == 0,
    )


def _external_checks(run: dict[str, Any]) -> Iterator[Check]:
    result = run["result"]
    drained = result.get("drain_rate")
    published = result["readings"] + result.get("backlog", 0)
    backlog = (
        f"; a backlog of {result['backlog']:,} stored at {drained:,.0f} readings/s by a restarted hub"
        if drained is not None
        else ""
    )
    # No rate target: the figure sizes a deployment (docs/scale-out.md); what must hold is exactly-once storage.
    yield Check(
        f"External mode (RabbitMQ, 2 nodes), one hub on PostgreSQL, {run['publishers']} AMQP publishers",
        f"{result['stored_rate']:,.0f} readings/s stored after commit, {result['hub_cpu_ms_per_reading']:.3f} ms of"
        f" hub CPU per reading, {result['stored_distinct']:,} of {published:,} stored"
        f" ({result['stored_rows']:,} rows){backlog}",
        "every reading stored exactly once",
        result["exactly_once"],
    )


def _console_checks(run: dict[str, Any]) -> Iterator[Check]:
    rows = run["rows"]
    slowest = max(rows, key=lambda row: row["p95"])
    failed = [row["page"] for row in rows if row["status"] != 200]
    shown = f"slowest p95 {slowest['p95']:.1f} ms ({slowest['page']}), median p50 {_median_p50(rows):.1f} ms"
    yield Check(
        f"Console pages ({len(rows)} pages), {run['devices']:,} devices, {run['readings']:,} readings, SQLite",
        shown + (f"; not 200: {', '.join(failed)}" if failed else ""),
        f"p95 ≤ {CONSOLE_P95_MS:.0f} ms on every page",
        not failed and slowest["p95"] <= CONSOLE_P95_MS,
    )


def _median_p50(rows: list[dict[str, Any]]) -> float:
    ordered = sorted(row["p50"] for row in rows)
    return ordered[len(ordered) // 2]


def _source_line(name: str, run: dict[str, Any]) -> str:
    machine = run["machine"]
    start, end = run["load"]["start"], run["load"]["end"]
    line = (
        f"- {SOURCES[name]}: {machine['Date']}, {machine['CPU']}, Python {machine['Python']}; 1-minute load average"
        f" {start[0]:.2f} at the start, {end[0]:.2f} at the end (the benchmark's own processes included)."
    )
    return line + (f" {run['note']}" if run.get("note") else "")


def summary(results: Results, plotted: dict[str, str]) -> str:
    """The Markdown block between the summary markers: every target, met or not, where the figures come from, and
    the plots drawn (``plotted``: file name → link relative to the document)."""
    checkers = {
        "broker": _broker_checks,
        "connections": _connection_checks,
        "telemetry": _telemetry_checks,
        "authbackend": _authbackend_checks,
        "external": _external_checks,
        "console": _console_checks,
    }
    lines = [START_MARK, "", "| Scenario | Measured | Target | Met |", "| --- | --- | --- | --- |"]
    missing: list[str] = []
    for name, checker in checkers.items():
        if name not in results:
            missing.append(SOURCES[name])
            continue
        for check in checker(results[name]):
            verdict = {True: "met", False: "**not met**", None: "not measured"}[check.met]
            lines.append(f"| {check.what} | {check.measured} | {check.target} | {verdict} |")
    lines += ["", "Where the figures come from (the last stored run of each benchmark, `docs/bench/*.json`):", ""]
    lines += [_source_line(name, run) for name, run in results.items()]
    lines += [f"- {source}: no stored run yet, so its targets are not shown as met." for source in missing]
    lines += [line for name in PLOTS if name in plotted for line in ("", f"![{PLOTS[name]}]({plotted[name]})")]
    lines += ["", END_MARK]
    return "\n".join(lines)


def write_summary(block: str, doc: Path = DOC) -> None:
    """Replace the summary block of ``doc`` (inserting it after the first heading the first time)."""
    text = doc.read_text()
    if START_MARK not in text:
        heading, _, rest = text.partition("\n")
        text = f"{heading}\n\n{START_MARK}\n{END_MARK}\n{rest}"
        doc.write_text(text)
    replace_block(doc, START_MARK, END_MARK, block)


def replace_block(doc: Path, start: str, end: str, block: str) -> None:
    """Replace the text from marker ``start`` to marker ``end`` of ``doc`` by ``block`` (which carries the markers).

    A document without the markers gets ``block`` appended at its end.
    """
    text = doc.read_text()
    if start not in text:
        doc.write_text(text.rstrip("\n") + f"\n\n{block}\n")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + block + tail)


def update(data_dir: Path = DATA_DIR, out_dir: Path = PLOT_DIR, doc: Path | None = DOC) -> list[Path]:
    """Re-render the plots (and, unless ``doc`` is None, the summary) from the stored results."""
    results = load(data_dir)
    written = plots(results, out_dir)
    if doc is not None:
        links = {path.name: Path(os.path.relpath(path, doc.parent)).as_posix() for path in written}
        write_summary(summary(results, links), doc)
    return written


def main(argv: list[str] | None = None) -> int:
    """Redraw plots and summary from the stored results, without running any load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="directory of the stored results (JSON)")
    parser.add_argument("--out", type=Path, default=PLOT_DIR, help="directory the SVG plots are written to")
    parser.add_argument("--doc", type=Path, default=DOC, help="Markdown file whose summary block is rewritten")
    parser.add_argument("--no-doc", action="store_true", help="leave the summary in docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    for path in update(args.data, args.out, None if args.no_doc else args.doc):
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
