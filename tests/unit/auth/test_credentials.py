"""The formats of generated secrets."""

from __future__ import annotations

import re

from mqtthub.auth.credentials import API_TOKEN_PATTERN, new_api_token, new_device_token, token_hint


def test_api_token_format() -> None:
    token = new_api_token("acme4k2p")
    assert re.fullmatch(r"mqh_mqtt_acme4k2p_[A-Za-z0-9]{32}", token)
    assert API_TOKEN_PATTERN.match(token)
    assert new_api_token("acme4k2p") != token
    assert token_hint(token) == token[: len("mqh_mqtt_acme4k2p_") + 4] + "…"


def test_device_token_format() -> None:
    token = new_device_token()
    assert re.fullmatch(r"mqh_dev_[A-Za-z0-9]{40}", token)
    assert token_hint(token).startswith("mqh_dev_")
    assert len(token_hint(token)) == len("mqh_dev_") + 5
