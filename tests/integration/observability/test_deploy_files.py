"""The Grafana dashboard and the Prometheus alert rules in ``deploy/`` use only metric names the hub exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.messaging.conftest import threaded_hub

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "mqtthub.json"
ALERTS = DEPLOY / "prometheus" / "mqtthub-alerts.yml"

# PromQL's own words, and the series Prometheus adds itself.
_PROMQL = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "rate",
        "irate",
        "increase",
        "delta",
        "histogram_quantile",
        "clamp_min",
        "clamp_max",
        "abs",
        "absent",
        "topk",
        "bottomk",
        "and",
        "or",
        "unless",
        "bool",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "by",
        "without",
        "label_values",
        "up",
    ]
)
_SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def metric_names(expression: str) -> set[str]:
    """The series names an expression reads: strings, label matchers and lists, ranges and Grafana variables removed."""
    expression = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    expression = re.sub(r"\{[^}]*\}", "", expression)
    expression = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expression)
    expression = re.sub(r"\[[^\]]*\]", "", expression)
    expression = re.sub(r"\$\w+", "", expression)
    return {name for name in re.findall(r"\b[a-zA-Z_:][\w:]*", expression) if name not in _PROMQL}


def exported_names(workdir: Path) -> set[str]:
    """Every sample name a hub's ``/metrics`` can carry (opt-in series included)."""
    with threaded_hub(workdir, metrics_organization_labels=True) as hub:
        text = httpx.get(hub.http_url + "/metrics", timeout=30).text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES.get(family.type, ()))
    return names


def _dashboard_expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [expr for value in node.values() for expr in _dashboard_expressions(value)]
    if isinstance(node, list):
        return [expr for value in node for expr in _dashboard_expressions(value)]
    return []


def test_metric_names_are_found_in_expressions() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (le, route) (rate(mqtthub_http_request_duration_seconds_bucket"
        '{job=~"$job", status=~"5.."}[$__rate_interval]))) / on (instance) up{job="x"}'
    )
    assert metric_names(expression) == {"mqtthub_http_request_duration_seconds_bucket"}
    assert metric_names("sum(rate(mqtthub_mqtt_mesages_received_total[5m]))") == {"mqtthub_mqtt_mesages_received_total"}


def test_dashboard_and_alert_rules_use_only_exported_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    panel_expressions = _dashboard_expressions(dashboard["panels"])
    rule_expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert panel_expressions
    assert rule_expressions
    rows = {panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"}
    assert {"Traffic", "Connections", "Ingest", "Errors", "Integrations"} <= rows
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"MqtthubIngestWriterFailing", "MqtthubIngestQueueNearFull", "MqtthubConnectorDown"} <= alerts
    assert "MqtthubAuthFailuresSpiking" in alerts

    exported = exported_names(tmp_path)
    unknown = {
        (where, name)
        for where, expressions in (("dashboard", panel_expressions), ("alerts", rule_expressions))
        for expression in expressions
        for name in metric_names(expression)
        if name not in exported
    }
    assert not unknown, f"names the hub does not export: {sorted(unknown)}"
