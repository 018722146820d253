"""Run Python snippets one after another in one namespace, as a reader pasting them into one session would.

Started as a child process (``python snippet_driver.py``). Each line on standard input is a JSON object
``{"code": ..., "name": ...}``; the code runs in the shared namespace on one event loop, top-level ``await``
allowed. Each answer is one JSON line ``{"ok": bool, "error": str, "output": str}`` on the original standard
output; ``output`` is what the snippets (and threads they started) printed since the previous answer. The code
also finds ``wait_for_output(text, timeout)``, which waits until ``text`` was printed.

The top-level modules named in ``$SNIPPET_HIDDEN_MODULES`` (comma-separated) cannot be imported: the session
sees only what the documented install brings, not everything installed where it runs.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.abc
import inspect
import io
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, TextIO

# Run as a script, this file's directory comes first on sys.path: the test helpers beside it must not shadow
# the packages a README snippet imports (a reader's session has no tests/support on its path).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]


class _Printed(io.TextIOBase):
    """Everything printed, from any thread; read and cleared at each answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: list[str] = []
        self.seen = ""

    def write(self, text: str) -> int:
        with self._lock:
            self._text.append(text)
            self.seen += text
        return len(text)

    def take(self) -> str:
        with self._lock:
            text, self._text = "".join(self._text), []
        return text


class _Hidden(importlib.abc.MetaPathFinder):
    """Refuses the hidden top-level modules as if they were not installed."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        """Refuse a hidden module; leave any other to the next finder (by returning None)."""
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not brought by the documented install)")


async def _run(code: str, name: str, namespace: dict[str, Any]) -> None:
    compiled = compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # noqa: S307 - the README's own snippets, run as a reader would
    if inspect.iscoroutine(result):
        await result


def main() -> None:
    """Answer each snippet on standard input until it closes."""
    answers: TextIO = os.fdopen(os.dup(1), "w", encoding="utf-8")
    hidden = {name for name in os.environ.get("SNIPPET_HIDDEN_MODULES", "").split(",") if name}
    sys.meta_path.insert(0, _Hidden(hidden))
    printed = _Printed()
    sys.stdout = printed

    async def wait_for_output(text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in printed.seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} was not printed within {timeout}s")
            await asyncio.sleep(0.05)

    namespace: dict[str, Any] = {"__name__": "__main__", "wait_for_output": wait_for_output}
    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        request = json.loads(line)
        error = ""
        try:
            loop.run_until_complete(_run(request["code"], request["name"], namespace))
        except BaseException:  # the answer carries any failure of a snippet, SystemExit included
            error = traceback.format_exc()
        answers.write(json.dumps({"ok": not error, "error": error, "output": printed.take()}) + "\n")
        answers.flush()
    os._exit(0)  # background threads a snippet started (listeners) must not keep the process alive


if __name__ == "__main__":
    main()
