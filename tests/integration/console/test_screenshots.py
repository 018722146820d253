"""``scripts/screenshots`` keeps working: every page of the documentation's pictures is photographed cleanly."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.support.browser import VIEWPORTS
from tests.support.screenshots import SHOTS, take

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


async def test_every_shot_is_taken_at_its_width(tmp_path: Path) -> None:
    written = await take(tmp_path)  # fails on a console error or a request to another host, as the console tests do

    assert sorted(path.name for path in written) == sorted(f"{shot.name}.png" for shot in SHOTS)
    for shot in SHOTS:
        width, height = _size(tmp_path / f"{shot.name}.png")
        assert width == VIEWPORTS[shot.viewport]["width"]
        assert height >= VIEWPORTS[shot.viewport]["height"]
