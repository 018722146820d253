"""Following the README: its shell, console and Python blocks run in order against a served hub.

A :class:`Walk` keeps what a reader keeps between steps: the shell variables the blocks set (carried from one
block to the next), one Python session for the Python blocks, and the working directory of the hub (where the CLI
finds the hub's database, secret key and CA, as it does for a reader in the quick start's directory).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.readme import Block, console_steps, json_values_in, shown_answers

DRIVER = Path(__file__).resolve().parents[2] / "support" / "snippet_driver.py"

# What every shell block runs under. ``curl`` fails on an HTTP error answer (the README's examples must all
# succeed), and variables the block assigns are exported so that the next block sees them (``set -a``).
_PRELUDE = 'set -euo pipefail\nset -a\ncurl() { command curl --fail-with-body "$@"; }\n'
# Variables of the shell itself, never carried from one block to the next.
_SHELL_OWN = ("BASH", "SHELLOPTS", "SHLVL", "PWD", "OLDPWD", "_", "PIPESTATUS")


class BlockFailed(AssertionError):
    """A README block did not do what the README says."""


@dataclass(frozen=True)
class Bounded:
    """A long-running command (a listener, ``sub``): started, fed, checked, then stopped with Ctrl+C.

    Attributes:
        contains: Text of the command (a line of a shell block, a console command) this applies to.
        ready: Printed once the command is ready for ``feed`` (e.g. ``subscribed to``); empty: wait ``seconds``.
        feed: Called with the walk once ready, e.g. to publish what the command should show.
        expect: Printed after the feed.
        exits: The command ends by itself after the feed (``--count``) instead of being stopped.
        seconds: Bound on each wait.
    """

    contains: str
    ready: str = ""
    feed: Callable[[Walk], None] | None = None
    expect: str = ""
    exits: bool = False
    seconds: float = 20.0


@dataclass(frozen=True)
class Runner:
    """How one README block runs: the block is the one runnable block whose text contains ``anchor``.

    Attributes:
        anchor: Text found in that block only.
        replace: Placeholders of the block and what they become (formatted with :meth:`Walk.values`).
        bounded: Its long-running commands.
        expect: Texts its output must contain.
        sets: Shell variables it must leave set (non-empty).
        before: Called with the walk before the block runs (e.g. to make a file the block reads).
        after: Python code run in the same session after a Python block (formatted like ``replace``), to use what
            the block built: start a loop, wait for a message, stop a listener.
        exempt: Why the block cannot run here; then nothing else applies.
        elsewhere: The test that runs the block instead of the walk, and why.
    """

    anchor: str
    replace: tuple[tuple[str, str], ...] = ()
    bounded: tuple[Bounded, ...] = ()
    expect: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    before: Callable[[Walk], None] | None = None
    after: str = ""
    exempt: str = ""
    elsewhere: str = ""


@dataclass
class Walk:
    """A reader's session: the hub's directory, the variables set so far, one Python session."""

    workdir: Path
    base_env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    carried: dict[str, str] = field(default_factory=dict)
    replacements: tuple[tuple[str, str], ...] = ()
    hidden_modules: tuple[str, ...] = ()
    _python: subprocess.Popen[str] | None = None

    # --- placeholders -----------------------------------------------------------------------------------

    def fill(self, text: str, replacements: tuple[tuple[str, str], ...]) -> str:
        """``text`` with the placeholders replaced by their values (``{name}``: a value known so far)."""
        for old, new in (*replacements, *self.replacements):
            if old in text:
                text = text.replace(old, self.expand(new))
        return text

    def expand(self, text: str) -> str:
        """``text`` with each ``{name}`` of a known value or carried variable replaced (other braces stay)."""
        for name, value in (self.carried | self.values).items():
            text = text.replace("{" + name + "}", value)
        return text

    def env(self) -> dict[str, str]:
        """The environment of the next command: the base one and every variable the blocks set."""
        return self.base_env | self.carried

    # --- running blocks -------------------------------------------------------------------------------

    def run(self, block: Block, runner: Runner) -> str:
        """Run ``block`` as ``runner`` says; return its output."""
        if runner.before is not None:
            runner.before(self)
        text = self.fill(block.text, runner.replace)
        if block.lang == "python":
            output = self._run_python(block, text)
            if runner.after:
                output += self._run_python(block, self.expand(runner.after), glue=True)
        elif block.lang == "console":
            output = "".join(
                self._run_console(block, step.command, step.output, runner) for step in console_steps(block)
            )
        elif runner.bounded:
            output = "".join(self._run_lines(block, text, runner))
        else:
            output = self._run_shell(block, text)
            answers = json_values_in(output)
            for shown in shown_answers(text):
                if shown not in answers:
                    raise BlockFailed(f"{block}: the answer it shows, {shown}, is not among its answers:\n{output}")
        for expected in runner.expect:
            if expected not in output:
                raise BlockFailed(f"{block}: {expected!r} is not in its output:\n{output}")
        for name in runner.sets:
            if not self.carried.get(name):
                raise BlockFailed(f"{block}: ${name} is not set afterwards (output:\n{output})")
        return output

    def _run_shell(self, block: Block, script: str, *, check: bool = True) -> str:
        """Run ``script``; with ``check``, a non-zero exit status fails the block."""
        state = self.workdir / ".readme-walk-env"
        state.unlink(missing_ok=True)
        completed = subprocess.run(
            ["bash", "-c", "trap 'env -0 > \"$README_WALK_STATE\"' EXIT\n" + _PRELUDE + script],
            cwd=self.workdir,
            env=self.env() | {"README_WALK_STATE": str(state)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout + completed.stderr
        if check and completed.returncode != 0:
            raise BlockFailed(f"{block}: exit status {completed.returncode}\n{output}")
        self._carry(state.read_text(encoding="utf-8"))
        return output

    def _carry(self, dumped: str) -> None:
        for entry in dumped.split("\0"):
            name, _, value = entry.partition("=")
            if not name or name in _SHELL_OWN or name.startswith("BASH") or name == "README_WALK_STATE":
                continue
            if self.base_env.get(name) != value:
                self.carried[name] = value

    def _run_console(self, block: Block, command: str, shown: str, runner: Runner) -> str:
        command = self.fill(command, runner.replace)
        for bounded in runner.bounded:
            if bounded.contains in command:
                return self._run_bounded(block, command, bounded)
        # A command shown with its output is judged by the output (it may show a failure); others must succeed.
        output = self._run_shell(block, command, check=not shown)
        if shown and output.strip() != shown:
            raise BlockFailed(f"{block}: `{command}` printed\n{output.strip()}\ninstead of\n{shown}")
        return output

    def _run_lines(self, block: Block, script: str, runner: Runner) -> list[str]:
        """A block of long-running commands, one a line: each runs bounded, in order."""
        outputs = []
        for line in script.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            matching = [bounded for bounded in runner.bounded if bounded.contains in line]
            if len(matching) != 1:
                raise BlockFailed(f"{block}: no single bound for the line {line!r}")
            outputs.append(self._run_bounded(block, line, matching[0]))
        return outputs

    def _run_bounded(self, block: Block, command: str, bounded: Bounded) -> str:
        log = self.workdir / ".readme-walk-bounded.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                ["bash", "-c", _PRELUDE + command],
                cwd=self.workdir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C goes to its process group, as a terminal sends it
            )
        try:
            if bounded.ready:
                self._wait_printed(block, command, process, log, bounded.ready, bounded.seconds)
            else:
                time.sleep(bounded.seconds)
            if process.poll() is not None and not bounded.exits:
                raise BlockFailed(f"{block}: `{command}` ended ({process.returncode}):\n{log.read_text()}")
            if bounded.feed is not None:
                self._feed_until(block, command, process, log, bounded)
            if bounded.exits:
                returncode = process.wait(timeout=bounded.seconds)
            else:
                os.killpg(process.pid, signal.SIGINT)
                returncode = process.wait(timeout=bounded.seconds)
            if returncode != 0:
                raise BlockFailed(f"{block}: `{command}` exited with {returncode}:\n{log.read_text()}")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return log.read_text()

    def _feed_until(
        self, block: Block, command: str, process: subprocess.Popen[bytes], log: Path, bounded: Bounded
    ) -> None:
        """Feed the command until it prints what it should (a subscription may lag behind its SUBACK)."""
        assert bounded.feed is not None
        deadline = time.monotonic() + bounded.seconds
        while True:
            bounded.feed(self)
            try:
                self._wait_printed(block, command, process, log, bounded.expect or "", 2.0)
                return
            except BlockFailed:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise

    def _wait_printed(
        self, block: Block, command: str, process: subprocess.Popen[bytes], log: Path, text: str, seconds: float
    ) -> None:
        deadline = time.monotonic() + seconds
        while text not in log.read_text():
            if time.monotonic() > deadline:
                raise BlockFailed(f"{block}: `{command}` did not print {text!r} within {seconds}s:\n{log.read_text()}")
            if process.poll() is not None and text not in log.read_text():
                raise BlockFailed(f"{block}: `{command}` ended ({process.returncode}):\n{log.read_text()}")
            time.sleep(0.05)

    def _run_python(self, block: Block, code: str, *, glue: bool = False) -> str:
        if self._python is None:
            self._python = subprocess.Popen(
                [sys.executable, str(DRIVER)],
                cwd=self.workdir,
                env=self.env() | {"SNIPPET_HIDDEN_MODULES": ",".join(self.hidden_modules)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self._python.stdin is not None
        assert self._python.stdout is not None
        name = f"README.md:{block.line}" + (" (test's follow-up)" if glue else "")
        self._python.stdin.write(json.dumps({"code": code, "name": name}) + "\n")
        self._python.stdin.flush()
        line = self._python.stdout.readline()
        if not line:
            raise BlockFailed(f"{block}: the Python session ended")
        answer: Mapping[str, Any] = json.loads(line)
        if not answer["ok"]:
            raise BlockFailed(f"{name}:\n{answer['error']}\nprinted:\n{answer['output']}")
        return str(answer["output"])

    def close(self) -> None:
        """End the Python session (the process this walk started)."""
        if self._python is not None:
            assert self._python.stdin is not None
            self._python.stdin.close()
            try:
                self._python.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._python.kill()
                self._python.wait()
            self._python = None
