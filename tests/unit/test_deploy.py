"""The production configuration in ``deploy/`` agrees with the code it configures.

Each file there names things the code defines: hub settings, the auth backend's routes, the plugins the test
cluster runs, the metrics port. A rename on either side fails here instead of in someone's deployment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mqtthub.authbackend.dispatch import CONTRACTS, MOUNT_PATH
from mqtthub.config import ENV_PREFIX, Settings, load_settings
from tests.support.rabbitmq import PLUGINS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HUB_ENV = DEPLOY / "hub" / "hub.env"


def _hub_settings() -> Settings:
    return load_settings(env_file=HUB_ENV)


def _conf_keys(path: Path) -> dict[str, str]:
    """``key = value`` lines of a RabbitMQ ``.conf`` (sysctl format), comments left out."""
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _deploy_files() -> list[Path]:
    return sorted(path for path in DEPLOY.rglob("*") if path.is_file() and path.suffix != ".json")


def test_every_setting_named_in_deploy_exists() -> None:
    named = {name for path in _deploy_files() for name in re.findall(rf"{ENV_PREFIX}[A-Z0-9_]+", path.read_text())}
    assert named, "deploy/ names no hub setting"
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    assert sorted(named - known) == []


def test_hub_env_is_valid_external_mode_settings() -> None:
    settings = _hub_settings()
    assert settings.broker == "rabbitmq"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.rabbitmq_amqp_url is not None
    assert settings.rabbitmq_management_url is not None
    assert settings.auth_backend_secret is not None
    assert settings.auth_backend_port is not None
    assert settings.metrics_port is not None
    # Brokers cannot send the secret in a URL's user part when it holds one of these.
    assert not set(settings.auth_backend_secret) & set("@:/")


def _served_paths() -> set[str]:
    return {f"{MOUNT_PATH}/{contract}{path}" for contract, routes in CONTRACTS.items() for path, _, _ in routes}


def _backend_urls(text: str) -> list[tuple[str, str]]:
    """(port, path) of every auth backend URL in ``text``."""
    return re.findall(rf"http://[^\s\"]*?:(\d+)({MOUNT_PATH}/[a-z/]+)", text)


@pytest.mark.parametrize("relative", ["rabbitmq/rabbitmq.conf", "emqx/emqx.conf"])
def test_broker_auth_urls_are_served_routes_on_the_auth_backend_port(relative: str) -> None:
    urls = _backend_urls((DEPLOY / relative).read_text())
    assert urls
    port = str(_hub_settings().auth_backend_port)
    for url_port, path in urls:
        assert path in _served_paths()
        assert url_port == port  # the load balancer's front for that port, as haproxy.cfg binds it


def test_rabbitmq_config_has_every_auth_path_and_the_test_cluster_plugins() -> None:
    keys = _conf_keys(DEPLOY / "rabbitmq" / "rabbitmq.conf")
    assert keys["auth_backends.1"] == "internal"
    assert keys["auth_backends.2"] == "http"
    assert keys["auth_http.http_method"] == "post"
    assert keys["mqtt.allow_anonymous"] == "false"
    for kind in ("user", "vhost", "resource", "topic"):
        assert keys[f"auth_http.{kind}_path"].endswith(f"{MOUNT_PATH}/rabbitmq/{kind}")
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text().strip().removeprefix("[").removesuffix("].")
    assert sorted(plugins.split(",")) == sorted(PLUGINS)


def test_load_balancer_fronts_the_api_and_auth_backend_ports_of_every_hub() -> None:
    settings = _hub_settings()
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    binds = set(re.findall(r"^\s*bind :(\d+)$", config, re.MULTILINE))
    assert binds == {str(settings.http_port), str(settings.auth_backend_port)}
    servers = re.findall(r"^\s*server (\S+) \S+:(\d+)", config, re.MULTILINE)
    by_port: dict[str, set[str]] = {}
    for name, port in servers:
        by_port.setdefault(port, set()).add(name)
    assert by_port[str(settings.http_port)] == by_port[str(settings.auth_backend_port)] == _hub_hosts()


def _prometheus() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    return loaded


def _hub_targets() -> list[tuple[str, str]]:
    """(host, port) of every target of the ``mqtthub`` scrape job."""
    (job,) = [job for job in _prometheus()["scrape_configs"] if job["job_name"] == "mqtthub"]
    targets = [str(target) for group in job["static_configs"] for target in group["targets"]]
    return [(host, port) for host, port in (target.split(":") for target in targets)]


def _hub_hosts() -> set[str]:
    return {host for host, _ in _hub_targets()}


def test_prometheus_scrapes_every_hub_on_the_metrics_port_with_the_alerts_loaded() -> None:
    assert {port for _, port in _hub_targets()} == {str(_hub_settings().metrics_port)}
    for rules in _prometheus()["rule_files"]:
        assert (DEPLOY / "prometheus" / rules).is_file()
    # The alert rules select the hubs by this job name.
    assert 'job="mqtthub"' in (DEPLOY / "prometheus" / "mqtthub-alerts.yml").read_text()
