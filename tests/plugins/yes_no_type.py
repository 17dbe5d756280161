"""A third-party task type, written as a plugin author would: ``yes_no`` questions
(is this message a complaint? does this invoice carry VAT?), answered in any variety.

The whole type is this one module. tests/tasks/test_plugin_task_type.py installs it under
the entry-point group ``moroccan_eval.task_types`` and runs it end to end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moroccan_eval.io import JSONValue
from moroccan_eval.records import PredictionRecord
from moroccan_eval.suites.schema import Item
from moroccan_eval.tasks.base import AnswerParser, MetricDef, TaskType
from moroccan_eval.text import normalize

YES = {"yes", "oui", "ah", "iyeh", "wah", "نعم", "اه", "ⵢⴰⵀ", "yah"}
NO = {"no", "non", "la", "lla", "لا", "ⵓⵀⵓ", "uhu"}


class YesNoParser(AnswerParser):
    """The first word of the answer, read as yes or no in any shipped variety."""

    def parse(self, text: str | None) -> bool | None:
        words = normalize(text or "").split()
        if not words:
            return None
        return True if words[0] in YES else False if words[0] in NO else None


def _right(record: PredictionRecord) -> tuple[int, int]:
    return int(bool(record.get("correct"))), 1


def _said_yes(record: PredictionRecord) -> tuple[int, int]:
    return int(record.get("parsed") is True), 1


@dataclass
class YesShare:
    """How often each model answers yes (a model that always agrees is easy to spot)."""

    answers: Counter[str] = field(default_factory=Counter)

    def add(self, record: PredictionRecord) -> None:
        self.answers[{True: "yes", False: "no"}.get(record.get("parsed"), "none")] += 1  # type: ignore[arg-type]


class YesNo(TaskType):
    name = "yes_no"
    description = "a yes/no question about a message: accuracy, yes rate"
    default_metrics = ("accuracy",)
    messages: ClassVar[dict[str, dict[str, str]]] = {
        "en": {"yes_share": "Answers: yes / no / none"},
        "fr": {"yes_share": "Réponses : oui / non / aucune"}}
    report_fragment = """
<h4>{{ t("yes_share") }}</h4>
<ul class="yes-share">
{% for model, task in view.rows %}
  {% set answers = view.tallies[model.name].answers %}
  <li><bdi>{{ model.name }}</bdi>: {{ answers["yes"] }} / {{ answers["no"] }} / {{ answers["none"] }}</li>
{% endfor %}
</ul>
"""  # noqa: E501

    def metrics(self) -> dict[str, MetricDef]:
        return {"accuracy": MetricDef("accuracy", _right),
                "yes_rate": MetricDef("yes_rate", _said_yes, higher_is_better=False)}

    def parser(self) -> YesNoParser:
        return YesNoParser()

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        return [] if isinstance(item["reference"], bool) else [
            f"reference must be true or false, not {item['reference']!r}"]

    def show_reference(self, reference: JSONValue) -> str:
        return "yes" if reference else "no"

    def new_tally(self) -> YesShare:
        return YesShare()


def agreeable(request: dict[str, Any]) -> str:
    """A toy model that says yes to anything with a question mark, in the asker's words."""
    text = str(request["input"]["text"])
    if "?" not in text and "؟" not in text:
        return "no"
    return "oui" if " " in text and text.isascii() else "نعم"
