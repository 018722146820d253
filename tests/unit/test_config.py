"""Settings: environment, overrides, and one clear line per invalid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqtthub.config import Settings, load_settings, settings_table
from mqtthub.errors import ConfigurationError


def test_defaults_are_a_local_sqlite_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.http_port == 8000
    assert settings.mqtt_port == 1883
    assert settings.database_url.startswith("sqlite+aiosqlite://")
    assert settings.allow_anonymous is False
    assert settings.host == "127.0.0.1"


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTTHUB_HTTP_PORT", "9001")
    monkeypatch.setenv("MQTTHUB_ALLOW_ANONYMOUS", "true")
    settings = load_settings(mqtt_port=11883, ws_port=None)
    assert settings.http_port == 9001
    assert settings.allow_anonymous is True
    assert settings.mqtt_port == 11883
    assert settings.ws_port == 8083


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MQTTHUB_HTTP_PORT", raising=False)
    env_file = tmp_path / "hub.env"
    env_file.write_text("MQTTHUB_HTTP_PORT=8123\nMQTTHUB_LOG_FORMAT=json\n")
    settings = load_settings(env_file)
    assert settings.http_port == 8123
    assert settings.log_format == "json"


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTTHUB_HTTP_PORT", "abc")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.message.startswith("MQTTHUB_HTTP_PORT: ")
    assert "'abc'" in caught.value.message
    assert "\n" not in caught.value.message


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTTHUB_ADMIN_PASSWORD", "short")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "MQTTHUB_ADMIN_PASSWORD" in caught.value.message
    assert "short" not in caught.value.message.replace("at least", "")


@pytest.mark.parametrize("given", ["WARNING", "warning", "Warning"])
def test_log_level_is_accepted_in_any_case(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setenv("MQTTHUB_LOG_LEVEL", given)
    assert load_settings().log_level == "warning"


def test_metrics_token_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTTHUB_METRICS_TOKEN", "tiny-token")
    with pytest.raises(ConfigurationError, match="MQTTHUB_METRICS_TOKEN") as caught:
        load_settings()
    assert "tiny-token" not in caught.value.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MQTTHUB_DATABASE_URL", "mysql://localhost/db"),
        ("MQTTHUB_LOG_LEVEL", "loud"),
        ("MQTTHUB_MQTT_PORT", "70000"),
        ("MQTTHUB_SECRET_KEY", "too-short"),
    ],
)
def test_each_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        load_settings()


def test_readme_table_is_generated_from_the_settings() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- settings:start -->\n") + len("<!-- settings:start -->\n")
    end = readme.index("<!-- settings:end -->")
    assert readme[start:end].strip() == settings_table()
    assert all(f"`MQTTHUB_{name.upper()}`" in readme for name in Settings.model_fields)


def test_an_external_broker_needs_its_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTTHUB_BROKER", "rabbitmq")
    monkeypatch.setenv("MQTTHUB_RABBITMQ_AMQP_URL", "amqp://hub:s3cret-pw@rabbit:5672")
    with pytest.raises(ConfigurationError, match="MQTTHUB_RABBITMQ_MANAGEMENT_URL") as refused:
        load_settings()
    assert "s3cret-pw" not in str(refused.value)
    monkeypatch.setenv("MQTTHUB_RABBITMQ_MANAGEMENT_URL", "http://rabbit:15672")
    assert load_settings().broker == "rabbitmq"
