"""``extraction``: fields of a document (invoices, forms) as a JSON object.

Values are compared after normalisation (amounts as numbers, dates as ISO dates, text
without case, accents or extra spaces). Per item: true positives (field present and
right), false positives (present and wrong, or not asked for) and false negatives (asked
for and missing or wrong). The counts add up, so micro-F1 and its bootstrap come from
weighted sums. An answer that is not a JSON object misses every field. A list field
(invoice line items) counts each line, matched on its numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..io import JSONObject, JSONValue
from ..records import PredictionRecord
from ..stats.bootstrap import DetailValues
from ..suites.schema import Item
from ..text.values import normalize_value
from .base import AnswerParser, MetricDef, TaskType

if TYPE_CHECKING:  # numpy is imported where scores are computed, not at start-up
    import numpy as np

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
Counts = tuple[int, int, int]  # true positives, false positives, false negatives


def line_key(line: JSONValue) -> tuple[str, str, str]:
    """A line item as compared: quantity, unit price and amount, normalised. Descriptions
    are not compared (they are written in the document's language)."""
    fields = line if isinstance(line, dict) else {}
    return (normalize_value(fields.get("quantity")), normalize_value(fields.get("unit_price")),
            normalize_value(fields.get("amount")))


class JSONParser(AnswerParser):
    """The first JSON object of an answer (code fences and prose around it are ignored);
    ``None`` when there is none."""

    def parse(self, text: str | None) -> JSONObject | None:
        match = _JSON_OBJECT.search(text or "")
        if not match:
            return None
        try:
            value = json.loads(match.group(0))
        except (ValueError, RecursionError):  # not JSON, a 5,000-digit number, deep nesting
            return None
        return value if isinstance(value, dict) else None

    def field_counts(self, parsed: JSONValue, reference: JSONValue) -> dict[str, Counts]:
        """(true positives, false positives, false negatives) per expected field; fields
        not asked for are false positives under the key ``""``."""
        predicted = parsed if isinstance(parsed, dict) else {}
        expected_fields = reference if isinstance(reference, dict) else {}
        out: dict[str, Counts] = {}
        for key, expected in expected_fields.items():
            value = predicted.get(key)
            if isinstance(expected, list):
                left = [line_key(line) for line in value if isinstance(line, dict)] \
                    if isinstance(value, list) else []
                given = len(value) if isinstance(value, list) else int(value not in (None, ""))
                tp = 0
                for line in expected:
                    if (wanted := line_key(line)) in left:
                        left.remove(wanted)
                        tp += 1
                out[key] = (tp, given - tp, len(expected) - tp)
            else:
                right = key in predicted and normalize_value(value) == normalize_value(expected)
                out[key] = (int(right), int(value not in (None, "") and not right), int(not right))
        extra = sum(1 for k, v in predicted.items()
                    if k not in expected_fields and v not in (None, ""))
        if extra:
            out[""] = (0, extra, 0)
        return out

    @staticmethod
    def right_fields(field_counts: dict[str, Counts]) -> dict[str, bool]:
        """Per expected field: is it entirely right (for a list: every line, no extra)?"""
        return {k: fp == 0 and fn == 0 for k, (_, fp, fn) in field_counts.items() if k}

    def counts(self, parsed: JSONValue, reference: JSONValue) -> Counts:
        """(true positives, false positives, false negatives) summed over the fields."""
        per_field = self.field_counts(parsed, reference).values()
        return (sum(c[0] for c in per_field), sum(c[1] for c in per_field),
                sum(c[2] for c in per_field))

    def correct(self, parsed: JSONValue, reference: JSONValue) -> bool:
        _, fp, fn = self.counts(parsed, reference)
        return fp == 0 and fn == 0


def field_f1(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Micro-F1 over fields: 2·TP / (2·TP + FP + FN), 0 when nothing was expected or given."""
    import numpy as np
    tp, fp, fn = (weights @ rows).T
    denom = 2 * tp + fp + fn
    return np.asarray(np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float),
                                where=denom > 0))


def exact_match(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Share of items with no false positive and no false negative."""
    import numpy as np
    exact = ((rows[:, 1] == 0) & (rows[:, 2] == 0)).astype(float)
    return np.asarray((weights @ exact) / weights.sum(axis=1))


class Extraction(TaskType):
    name = "extraction"
    description = "fields of a document as a JSON object: field micro-F1, exact match"
    baselines = ("rules",)
    messages: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "en": {"field_accuracy": "Accuracy per field", "col_field": "Field"},
        "fr": {"field_accuracy": "Exactitude par champ", "col_field": "Champ"},
        "ar": {"field_accuracy": "الدقة حسب الحقل", "col_field": "الحقل"},
    }
    report_fragment: ClassVar[str | None] = """
{% from "_macros.html.j2" import model_name with context %}
<h4>{{ t("field_accuracy") }}</h4>
{% for model, task in view.rows %}
{% set per_variety = task.scores.varieties %}
{% set names = [] %}{% for code in view.varieties %}{% for name in (per_variety[code].details.get("field_accuracy") or {}) if code in per_variety and name not in names %}{% set _ = names.append(name) %}{% endfor %}{% endfor %}
<details{% if loop.first %} open{% endif %}>
  <summary>{{ model_name(model.name) }}</summary>
  <div class="scroll">
  <table class="sortable">
    <thead><tr><th scope="col">{{ t("col_field") }}</th>{% for code in view.varieties %}<th scope="col"><bdi class="code">{{ code }}</bdi></th>{% endfor %}</tr></thead>
    <tbody>
    {% for name in names %}
      <tr><th scope="row"><bdi class="code">{{ name }}</bdi></th>
      {% for code in view.varieties %}
        {% set value = (per_variety[code].details.get("field_accuracy") or {}).get(name) if code in per_variety else none %}
        <td style="background: {{ value | heat }}" data-v="{{ value if value is not none else '' }}">{{ value | pct }}</td>
      {% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  </div>
</details>
{% endfor %}
"""  # noqa: E501

    def metrics(self) -> dict[str, MetricDef]:
        parser = JSONParser()

        def counts(record: PredictionRecord) -> Counts:
            return parser.counts(record.get("parsed"), record.get("reference"))

        return {"field_f1": MetricDef("field_f1", counts, field_f1),
                "exact_match": MetricDef("exact_match", counts, exact_match)}

    def parser(self) -> JSONParser:
        return JSONParser()

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        reference = item["reference"]
        return [] if isinstance(reference, dict) and reference else [
            "reference must be an object of the expected fields"]

    def show_reference(self, reference: JSONValue) -> str:
        """``number: FA-2026-0142; date: 2026-03-14; line_items: 3 lines``."""
        fields = reference if isinstance(reference, dict) else {}
        return "; ".join(f"{name}: {len(value)} lines" if isinstance(value, list)
                         else f"{name}: {value}" for name, value in fields.items())

    def detail_values(self) -> DetailValues:
        """1 per expected field the answer has entirely right, else 0."""
        parser = JSONParser()

        def right(record: PredictionRecord) -> dict[str, float]:
            per_field = parser.field_counts(record.get("parsed"), record.get("reference"))
            return {name: float(ok) for name, ok in parser.right_fields(per_field).items()}
        return right

    def variety_details(self, sums: Mapping[str, tuple[float, int]]) -> JSONObject:
        """The accuracy of each field."""
        return {"field_accuracy": {name: round(hits / count, 6)
                                   for name, (hits, count) in sorted(sums.items())}}
