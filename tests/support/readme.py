"""The README's code blocks, as a reader sees them: language, first line and text; console blocks as steps."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
RUNNABLE = ("bash", "console", "python")
_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    lang: str
    line: int
    text: str

    def __str__(self) -> str:
        first = self.text.splitlines()[0] if self.text else ""
        return f"README.md:{self.line} ```{self.lang} {first[:60]!r}"


@dataclass(frozen=True)
class ConsoleStep:
    """A ``$ command`` of a console block and the output shown under it (empty when none is shown)."""

    command: str
    output: str


def code_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README (or of ``text``), in order; ``line`` is the line of its opening fence."""
    blocks: list[Block] = []
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    opened: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if opened is None and match:
            opened, body = (match["lang"], number), []
        elif opened is not None and line.strip() == "```":
            blocks.append(Block(opened[0], opened[1], "\n".join(body) + "\n"))
            opened = None
        elif opened is not None:
            body.append(line)
    if opened is not None:
        raise ValueError(f"README.md:{opened[1]}: code block never closed")
    return blocks


def runnable_blocks() -> list[Block]:
    """The blocks a reader is meant to run: shell, console sessions and Python."""
    return [block for block in code_blocks() if block.lang in RUNNABLE]


def console_steps(block: Block) -> list[ConsoleStep]:
    """The ``$ `` commands of a console block, each with the output lines shown after it."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"{block}: output before the first command")
    return [ConsoleStep(command, "\n".join(output).strip()) for command, output in steps]


def shown_answers(script: str) -> list[object]:
    """The JSON answers a shell block shows in comments (``# {...}``, continued on ``#`` lines), parsed."""
    answers: list[object] = []
    shown: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("# {") or (shown and stripped.startswith("#")):
            shown.append(stripped[1:])
            try:
                answers.append(json.loads(" ".join(shown)))
            except ValueError:
                continue  # not complete yet
            shown = []
        elif shown:
            raise ValueError(f"an answer shown in a comment does not parse: {' '.join(shown)}")
    if shown:
        raise ValueError(f"an answer shown in a comment does not parse: {' '.join(shown)}")
    return answers


def json_values_in(output: str) -> list[object]:
    """Every JSON object that starts somewhere in ``output`` (the answers of the commands a block ran)."""
    decoder = json.JSONDecoder()
    values: list[object] = []
    for start in (index for index, char in enumerate(output) if char == "{"):
        try:
            values.append(decoder.raw_decode(output, start)[0])
        except ValueError:
            continue
    return values
