"""Reading the README's code blocks: fences, console sessions, answers shown in comments."""

from __future__ import annotations

import pytest

from tests.support.readme import code_blocks, console_steps, json_values_in, shown_answers

SAMPLE = """# Title

```bash
echo one
```

text with `inline` code

```console
$ mqtthub version
0.1.0
$ export A=1
```

```json
{"shown": true}
```
"""


def test_blocks_keep_language_line_and_text() -> None:
    blocks = code_blocks(SAMPLE)
    assert [(block.lang, block.line) for block in blocks] == [("bash", 3), ("console", 9), ("json", 15)]
    assert blocks[0].text == "echo one\n"


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="never closed"):
        code_blocks("```bash\necho\n")


def test_console_steps_pair_commands_with_their_output() -> None:
    steps = console_steps(code_blocks(SAMPLE)[1])
    assert [(step.command, step.output) for step in steps] == [("mqtthub version", "0.1.0"), ("export A=1", "")]


def test_answers_shown_in_comments_span_lines() -> None:
    script = 'curl x\n# {"status": "error",\n#  "code": 5}\n\n# 2. next step\ncurl y\n'
    assert shown_answers(script) == [{"status": "error", "code": 5}]


def test_an_answer_that_does_not_parse_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not parse"):
        shown_answers('# {"status": \ncurl y\n')


def test_json_values_are_found_anywhere_in_output() -> None:
    assert json_values_in('ok {"a": {"b": 1}} {broken {"c": 2}') == [{"a": {"b": 1}}, {"b": 1}, {"c": 2}]
