"""docs/security.md names only settings that exist, and the README points to it."""

from __future__ import annotations

import re
from pathlib import Path

from mqtthub.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_the_threat_model_names_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    names = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    named = re.findall(r"`(MQTTHUB_[A-Z_]+?)(_\*)?`", text)
    assert named
    for name, wildcard in named:
        if wildcard:
            assert any(known.startswith(name + "_") for known in names), name
        else:
            assert name in names, name
    assert "docs/security.md" in (ROOT / "README.md").read_text(encoding="utf-8")
