"""Write the ``test_noisy`` split of ``support/sentiment`` with support-intents' generator
(``suites/support-intents/noisy/make_noisy.py``: the same chat-typing rules), one change:
an emoji added to a review would change what the review says (😩 after a positive review),
so the ``emoji`` rule here only repeats an emoji the customer already typed (😍 → 😍😍) and
adds none otherwise.

    python suites/support/noisy/make_sentiment_noisy.py

Hand-written noisy items: ``sentiment_handwritten.jsonl`` beside this script. Then reseal:
``moroccan-eval suites checksum support --write``.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "sentiment.jsonl"
GENERATOR = HERE.parent.parent / "support-intents" / "noisy" / "make_noisy.py"
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF]")


def repeat_emoji(text: str, variety: str, rng: random.Random) -> str:
    """The last emoji of the review typed once more, or the text unchanged."""
    found = EMOJI.findall(text)
    if not found:
        return text
    last = text.rfind(found[-1])
    return text[:last] + found[-1] + text[last:]


def main() -> None:
    spec = importlib.util.spec_from_file_location("make_noisy", GENERATOR)
    assert spec and spec.loader
    make_noisy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_noisy)
    make_noisy.SURFACE["emoji"] = repeat_emoji
    make_noisy.emoji = repeat_emoji
    sys.argv = [str(GENERATOR), str(DATA), "--handwritten",
                str(HERE / "sentiment_handwritten.jsonl")]
    make_noisy.main()
    # "emoji" is listed only when an emoji was really repeated
    items = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    clean = {(i["group"], i["variety"]): i["fields"]["text"] for i in items
             if i["split"] == "test"}
    for item in items:
        if item["split"] == "test_noisy" and item["meta"]["noise_source"] == "rules":
            before = len(EMOJI.findall(clean[(item["group"], item["variety"])]))
            if len(EMOJI.findall(item["fields"]["text"])) <= before:
                item["meta"]["noise"] = [n for n in item["meta"]["noise"] if n != "emoji"]
    DATA.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                    encoding="utf-8")


if __name__ == "__main__":
    main()
