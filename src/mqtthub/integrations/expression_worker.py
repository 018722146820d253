"""The worker process of :class:`mqtthub.integrations.expressions.ExpressionPool`.

Started as ``python -m mqtthub.integrations.expression_worker MAX_INT_BITS MAX_LENGTH MEMORY``;
reads one JSON job per line on stdin, answers one JSON line on stdout, and exits when stdin
closes (so it never outlives the hub). Each job runs under a timer signal of its ``budget``
seconds; the whole process under an address-space limit of ``MEMORY`` bytes.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
from types import FrameType

from mqtthub.integrations.expressions import evaluate
from mqtthub.integrations.templates import ExpressionLimits


class _OutOfTime(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _OutOfTime


def main(argv: list[str]) -> None:
    """Serve jobs until stdin closes."""
    max_int_bits, max_length, memory = int(argv[0]), int(argv[1]), int(argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    limits = ExpressionLimits(max_int_bits=max_int_bits, max_length=max_length)
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C on the hub stops the hub, which closes our stdin
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin.buffer:
        job = json.loads(line)
        budget = float(job["budget"])
        try:
            signal.setitimer(signal.ITIMER_REAL, budget)
            try:
                reply = evaluate(job, limits)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            answer = json.dumps(reply, default=str)
        except _OutOfTime:
            answer = json.dumps({"error": f"evaluation took longer than {budget:g} s and was stopped"})
        except MemoryError:
            answer = json.dumps({"error": "evaluation needed more memory than allowed and was stopped"})
        except Exception as exc:  # a template or condition error: reported, the worker goes on
            answer = json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:500]}"})
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
