"""``qa``: grounded answers from the task's sources (``context_file``).

An answer to an answerable question is right when it states every fact of the answer key
and does not decline. A fact is one or more alternatives separated by ``|``; an alternative
of numbers and times only ("150", "8:00") is stated when the answer states those values
anywhere (the rule since toolkit 0.1.0); an alternative with words ("7 jours|7 أيام") is
stated when the answer has its words in order, each word the start of an answer word
(optionally after an article: ال, ل, l), its numbers as whole numbers, with at most two
non-number words between them: so a key "2 tentatives" is not met by an unrelated "2".
An answer to a question the sources do not cover is right when it declines. Both are
per-item yes/no outcomes, scored like labels.
``answer_chrf`` is corpus chrF++ of the answers against reference answers, where a wrong
answer counts as an empty one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..io import JSONValue
from ..records import Judgement, PredictionRecord
from ..stats.bootstrap import stable_id
from ..suites.schema import Item
from ..text import normalize
from ..text.values import stated_facts
from .base import AuditView, MetricDef, TaskType
from .classification import accuracy
from .text_pairs import TextParser, strip_answer_label
from .translation import corpus_metric


class QAParser(TextParser):
    """Grounded-QA answers: the whole cleaned text, whether it declines, whether it is right."""

    def __init__(self, refusals: Sequence[str]):
        self.refusals = [normalize(r) for r in refusals if normalize(r)]

    def parse(self, text: str | None) -> str | None:
        cleaned = text.strip() if text else ""
        return strip_answer_label(cleaned).strip() or None

    def refused(self, text: str | None) -> bool:
        norm = normalize(text or "")
        return any(phrase in norm for phrase in self.refusals)

    def judge(self, parsed: JSONValue, reference: JSONValue) -> Judgement:
        answer = parsed if isinstance(parsed, str) else None
        return {"correct": self.correct(answer, reference), "refused": self.refused(answer)}

    def correct(self, parsed: JSONValue, reference: JSONValue) -> bool:
        if not isinstance(parsed, str) or not parsed or not isinstance(reference, dict):
            return False
        if not reference.get("answerable"):
            return self.refused(parsed)
        facts = reference.get("facts")
        return not self.refused(parsed) and isinstance(facts, list) and all(
            fact_stated(str(fact), parsed) for fact in facts)


#: A digit run next to letters ("48h", "و48") is read as two words.
_DIGIT_EDGE = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")
#: Articles an answer word may carry before a key word ("الساعات", "lmrat").
_ARTICLES = ("ال", "ل", "l")
#: Non-number answer words allowed between two key words ("3 à 5 jours", "48 n tsaɛtin").
_MAX_GAP = 2


def _words(text: str) -> list[str]:
    return _DIGIT_EDGE.sub(" ", normalize(text)).split()


def _word_matches(key: str, word: str) -> bool:
    if key.isdigit():
        return word.isdigit() and (word.lstrip("0") or "0") == (key.lstrip("0") or "0")
    return word.startswith(key) or any(
        word.startswith(article) and word[len(article):].startswith(key)
        for article in _ARTICLES)


def _phrase_at(keys: list[str], words: list[str], start: int) -> bool:
    """``keys[1:]`` follow ``words[start]`` in order, each within the allowed gap."""
    if not keys:
        return True
    for offset in range(1, _MAX_GAP + 2):
        at = start + offset
        if at >= len(words):
            return False
        if _word_matches(keys[0], words[at]) and _phrase_at(keys[1:], words, at):
            return True
        if words[at].isdigit():  # a number between two key words breaks the phrase
            return False
    return False


def fact_stated(fact: str, answer: str) -> bool:
    """Whether ``answer`` states ``fact`` (alternatives separated by ``|``): numbers and
    times alone as values anywhere in the answer, alternatives with words as a phrase."""
    for alternative in (a.strip() for a in fact.split("|")):
        if not alternative:
            continue
        if not any(ch.isalpha() for ch in normalize(alternative)):
            if stated_facts(alternative) <= stated_facts(answer):
                return True
            continue
        keys, words = _words(alternative), _words(answer)
        if keys and any(_word_matches(keys[0], word) and _phrase_at(keys[1:], words, i)
                        for i, word in enumerate(words)):
            return True
    return False


def _answerable(record: PredictionRecord) -> bool:
    reference = record.get("reference")
    return isinstance(reference, dict) and bool(reference.get("answerable"))


def _answer_right(record: PredictionRecord) -> tuple[int, int]:
    """As labels (yes, no): the reference is always yes."""
    return 0, 0 if record.get("correct") else 1


def _declined_right(record: PredictionRecord) -> tuple[int, int]:
    """As labels (answer, refuse): what the item needs, and what the model did."""
    return 0 if _answerable(record) else 1, 1 if record.get("refused") else 0


def _answer_texts(record: PredictionRecord) -> tuple[str, str]:
    """(answer, reference answer) for ``answer_chrf``: a wrong answer is empty."""
    reference = record.get("reference")
    expected = reference.get("answer") if isinstance(reference, dict) else None
    answer = str(record.get("parsed") or "") if record.get("correct") else ""
    return answer, str(expected or "")


class GroundedQA(TaskType):
    name = "qa"
    description = ("answers grounded in the task's sources, or a refusal when they are silent: "
                   "answer accuracy, refusal accuracy, answer chrF++")
    default_metrics = ("answer_accuracy", "refusal_accuracy")
    baselines = ("retrieval",)

    def metrics(self) -> dict[str, MetricDef]:
        # The random streams of toolkit 0.1.0, where these rates were two-label accuracies:
        # kept so that earlier runs rescore to the same intervals.
        return {
            "answer_accuracy": MetricDef(
                "answer_accuracy", _answer_right, accuracy, resample="cells",
                stream="accuracy", seed_offset=stable_id("answer_accuracy") % 1000),
            "refusal_accuracy": MetricDef(
                "refusal_accuracy", _declined_right, accuracy, resample="cells",
                stream="accuracy", seed_offset=stable_id("refusal_accuracy") % 1000),
            "answer_chrf": corpus_metric("answer_chrf", "chrf", _answer_texts),
        }

    def parser(self) -> QAParser:
        from ..prompts import literals

        return QAParser(literals().refusals)

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        needs_answer = "answer_chrf" in self.selected_metrics()
        if _reference_ok(item["reference"], needs_answer):
            return []
        return ["reference must be {answerable: true, facts: [...]} or {answerable: false, "
                "facts: []}" + (", with the reference answer text in 'answer' (answer_chrf)"
                                if needs_answer else "")]

    def audit_view(self, item: Item) -> AuditView:
        reference = item["reference"]
        facts = reference.get("facts") if isinstance(reference, dict) else None
        keys = [str(f) for f in facts] if isinstance(facts, list) else []
        # an alternative without words is matched as values anywhere in the answer
        loose = [alt.strip() for key in keys for alt in key.split("|")
                 if alt.strip() and not any(ch.isalpha() for ch in normalize(alt))]
        return {**super().audit_view(item), "answer_keys": keys, "loose_keys": loose}

    def show_reference(self, reference: JSONValue) -> str:
        facts = reference.get("facts") if isinstance(reference, dict) else None
        # a fact's first alternative stands for it: the others are spellings of the same
        return ", ".join(str(f).split("|")[0].strip() for f in facts) \
            if isinstance(facts, list) and facts else "(should decline)"


def _reference_ok(reference: JSONValue, needs_answer: bool) -> bool:
    if not isinstance(reference, dict) or not isinstance(reference.get("answerable"), bool):
        return False
    answer = reference.get("answer")
    if needs_answer and not (isinstance(answer, str) and answer.strip()):
        return False
    facts = reference.get("facts")
    return isinstance(facts, list) and all(isinstance(f, str) and f for f in facts) and (
        bool(facts) == reference["answerable"])
