"""What translation and speech share: the answer is a text scored against a reference
text, and a failed or empty answer is scored as an empty text, never dropped."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..records import PredictionRecord
from ..suites.schema import Item
from .base import AnswerParser

_ANSWER_LABEL = re.compile(
    r"^\s*(?:translation|traduction|transliteration|answer|réponse|الترجمة|الجواب)\s*:\s*",
    re.IGNORECASE)


class TextParser(AnswerParser):
    """Cleans a free-text answer: first non-empty paragraph, no "Translation:" label, no
    surrounding quotes. ``None`` for an empty answer."""

    def parse(self, text: str | None) -> str | None:
        if not text:
            return None
        paragraphs = [p.strip() for p in text.strip().split("\n\n") if p.strip()]
        if not paragraphs:
            return None
        cleaned = strip_answer_label(paragraphs[0]).strip().strip("\"'«»“”").strip()
        return cleaned or None


def strip_answer_label(text: str) -> str:
    """``text`` without a leading "Answer:" / "Traduction :" / "الجواب:" label."""
    return _ANSWER_LABEL.sub("", text)


#: (answer, reference) texts of a record.
TextPairs = Callable[[PredictionRecord], tuple[str, str]]


def text_pair(record: PredictionRecord) -> tuple[str, str]:
    """(answer, reference) of a record; a failed or unparsed answer is empty."""
    return str(record.get("parsed") or ""), str(record.get("reference"))


def check_reference_text(item: Item, what: str) -> list[str]:
    """A non-empty reference text."""
    reference = item["reference"]
    return [] if isinstance(reference, str) and reference.strip() else [
        f"reference must be {what}"]

