"""The vendored browser libraries: each with its licence, listed in the manifest at its locked version."""

from __future__ import annotations

import json
from pathlib import Path

import mqtthub.console

VENDOR = Path(mqtthub.console.__file__).parent / "static" / "vendor"
LOCK = Path(__file__).resolve().parents[3] / "console-assets" / "package-lock.json"


def test_every_vendored_file_is_listed_with_its_package_version_and_licence() -> None:
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    locked = json.loads(LOCK.read_text())["packages"]
    assert {entry["package"] for entry in manifest} == {path.name for path in VENDOR.iterdir() if path.is_dir()}
    for entry in manifest:
        folder = VENDOR / entry["package"]
        assert sorted(path.name for path in folder.iterdir()) == entry["files"]
        assert "LICENSE" in entry["files"], f"{entry['package']} ships without its licence"
        assert entry["license"]
        assert locked[f"node_modules/{entry['package']}"]["version"] == entry["version"]
