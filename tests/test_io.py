"""Reading JSON lines: only the lines asked for are parsed, and numbered as in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from moroccan_eval.errors import ConfigError
from moroccan_eval.io import iter_jsonl


def test_only_the_lines_asked_for_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"n": 1}\nnot json\n{"n": 3}\n' + '{"long": "' + "x" * 500 + '"}\n'
                    '{"n": 5}\n', encoding="utf-8")
    # the bad line and the long one are read past, not parsed: lines after them keep their
    # numbers
    assert list(iter_jsonl(path, lines={1, 3, 5}, max_line_bytes=100)) == [
        (1, {"n": 1}), (3, {"n": 3}), (5, {"n": 5})]
    assert list(iter_jsonl(path, lines=set())) == []
    with pytest.raises(ConfigError, match=r"records.jsonl:2: "):
        list(iter_jsonl(path, lines={2}))
