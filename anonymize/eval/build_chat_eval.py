"""Builds chat-eval.jsonl from the hand-written chat-eval.src.txt.

Each source line is ``<variety> | text`` (a message) or ``<variety> ! text`` (a hard
negative: look-alikes that are not personal data); personal data is marked inline as
``[[ENTITY:value]]``. The output has the scanner's evaluation format: text, variety,
character spans, hard_negative. Run from the repository root:

    python anonymize/eval/build_chat_eval.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
SPAN = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]")
LINE = re.compile(r"^(\w+) ([|!]) (.+)$")


def parse(source: Path) -> list[dict[str, object]]:
    """The labelled messages of ``source``; a malformed line stops with its number."""
    rows: list[dict[str, object]] = []
    for number, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        match = LINE.match(raw)
        if not match:
            sys.exit(f"{source}:{number}: expected '<variety> | text' or '<variety> ! text'")
        variety, kind, marked = match.groups()
        text, spans, last = "", [], 0
        for span in SPAN.finditer(marked):
            text += marked[last:span.start()]
            spans.append({"start": len(text), "end": len(text) + len(span[2]),
                          "entity": span[1]})
            text += span[2]
            last = span.end()
        text += marked[last:]
        if kind == "!" and spans:
            sys.exit(f"{source}:{number}: a hard negative cannot have spans")
        rows.append({"id": f"chat-{len(rows) + 1:03d}", "variety": variety, "text": text,
                     "spans": spans, "hard_negative": kind == "!"})
    return rows


def main() -> None:
    rows = parse(HERE / "chat-eval.src.txt")
    with (HERE / "chat-eval.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(len(rows), "messages")


if __name__ == "__main__":
    main()
