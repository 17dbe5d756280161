"""``classification``: intent/routing, sentiment, priority, variety identification.

The model answers with a label; :class:`LabelParser` maps free text to one (aliases from the
task file let it answer in French, Arabic or Darija). Accuracy and macro-F1 are computed on
label indices with the ``cells`` resampling layout, so their intervals cost the same for
100 items as for 1,000,000. The macro-F1 equals ``sklearn.metrics.f1_score(average="macro",
zero_division=0)`` over the labels present in references or predictions (tested).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import did_you_mean
from ..io import JSONObject, JSONValue
from ..records import PredictionRecord
from ..suites.schema import Item, LabelSpec
from ..text import normalize
from .base import AnswerParser, AuditView, ImportRequest, MetricDef, TaskType

if TYPE_CHECKING:  # numpy is imported where scores are computed, not at start-up
    import numpy as np

MISSING = -1  # label index of an unparseable or failed answer
UNPARSED = "∅"  # confusion-matrix column of answers that name no label (or failed)


#: Chat-template control tokens: an output holding one is a template leak (a base model
#: continuing the conversation), not an answer.
CHAT_TOKENS = re.compile(
    r"<\|(?:im_start|im_end|eot_id|start_header_id|end_header_id|endoftext|assistant|user|"
    r"system|end)\|>|<(?:start|end)_of_turn>|\[/?INST\]|</s>|<s>", re.IGNORECASE)


#: Words in a row of a label's description that make a reply quote it (see LabelParser).
DESCRIPTION_WORDS = 5
_WORD = re.compile(r"\w+")


#: Replies a :class:`LabelParser` remembers the label of: at most this many, this long.
_MEMO_ENTRIES, _MEMO_CHARS = 4096, 200


class LabelParser(AnswerParser):
    """Maps a free-text reply to one label, insensitive to case, accents, Arabic
    diacritics and orthographic variants, ``_``/``-``/spaces.

    Honest by construction: a reply that names two or more different labels (a repeated
    label list, a hedge, an echoed prompt) or holds chat-template tokens is unparsed,
    never read as the first label it mentions. Quoting :data:`DESCRIPTION_WORDS` words in a
    row of a label's description names that label too: a base model echoing the prompt's
    label list mangles label names ("order_status") but copies their descriptions."""

    def __init__(self, labels: Mapping[str, LabelSpec]):
        self.described: dict[tuple[str, ...], str] = {}
        for label, spec in labels.items():
            words = tuple(_WORD.findall(normalize(spec.description)))
            for i in range(len(words) - DESCRIPTION_WORDS + 1):
                self.described.setdefault(words[i:i + DESCRIPTION_WORDS], label)
        self.exact: dict[str, str] = {}
        patterns: list[tuple[str, str]] = []
        for label, spec in labels.items():
            for surface in [label, *spec.aliases]:
                key = normalize(surface)
                if key:
                    self.exact.setdefault(key, label)
                    patterns.append((key, label))
        patterns.sort(key=lambda kv: len(kv[0]), reverse=True)
        self.patterns = [
            (re.compile(rf"(?<!\w){re.escape(key)}(?!\w)"), label) for key, label in patterns
        ]
        #: replies parsed so far (short ones: models repeat a few replies thousands of times)
        self._parsed: dict[str, str | None] = {}

    def mentions(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, label) of every label surface in the normalised reply; a shorter
        surface inside a longer one ("delivery" in "delivery status") is not a mention."""
        found: list[tuple[int, int, str]] = []
        for pattern, label in self.patterns:  # longest surfaces first
            for match in pattern.finditer(text):
                start, end = match.span()
                if not any(s < end and start < e for s, e, _ in found):
                    found.append((start, end, label))
        return sorted(found)

    def parse(self, text: str | None) -> str | None:
        """The one label the reply names; ``None`` when it names none, several, or holds
        chat-template tokens."""
        if not text:
            return None
        if len(text) > _MEMO_CHARS:
            return self._parse(text)
        try:
            return self._parsed[text]
        except KeyError:
            pass
        if len(self._parsed) >= _MEMO_ENTRIES:
            self._parsed.clear()
        parsed = self._parsed[text] = self._parse(text)
        return parsed

    def _parse(self, text: str) -> str | None:
        if CHAT_TOKENS.search(text):
            return None
        norm = normalize(text)
        if norm in self.exact:
            return self.exact[norm]
        named = {label for _, _, label in self.mentions(norm)}
        words = tuple(_WORD.findall(norm))
        named.update(label for i in range(len(words) - DESCRIPTION_WORDS + 1)
                     if (label := self.described.get(words[i:i + DESCRIPTION_WORDS])))
        return named.pop() if len(named) == 1 else None


# Weights are whole counts (a resample's draws, a cell's frequency), so every product below
# is a whole number, exact in any order of summation: one product serves several sums.


def accuracy(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Share of rows whose two columns (reference, answer) agree."""
    import numpy as np
    right, total = (weights @ np.stack([rows[:, 0] == rows[:, 1],
                                        np.ones(rows.shape[0], dtype=bool)], axis=1)).T
    return np.asarray(right / total)


def macro_f1(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean F1 over the labels present among the rows' references and answers."""
    import numpy as np
    true, pred = rows[:, 0], rows[:, 1]
    # a few distinct values (the cells of a variety): a set is quicker than np.unique
    labels = np.array(sorted({*true.tolist(), *pred[pred != MISSING].tolist()}), dtype=float)
    total, n = np.zeros(weights.shape[0]), labels.size
    if n == 0:
        return total
    is_true, is_pred = true == labels[:, None], pred == labels[:, None]  # (labels, rows)
    counts = np.vstack([is_true & is_pred, is_true, is_pred]) @ weights.T  # (3 x labels, resamples)
    tp, denom = counts[:n], counts[n:2 * n] + counts[2 * n:]
    # whole counts: a denominator is 0 (and tp with it: F1 0) or at least 1 (kept as it is)
    f1 = 2 * tp / np.maximum(denom, 1)
    for per_label in f1:  # summed label by label, as the values were first computed
        total += per_label
    return total / n


@dataclass
class Confusion:
    """A model's confusion matrix over the task's labels, for the report."""

    labels: list[str]
    cells: Counter[tuple[str, str]] = field(default_factory=Counter)
    unparsed: str = UNPARSED

    def add(self, record: PredictionRecord) -> None:
        parsed = record.get("parsed")
        self.cells[(str(record.get("reference")), str(parsed) if parsed else UNPARSED)] += 1


class Classification(TaskType):
    name = "classification"
    description = "a label per message (intents, routing, sentiment, variety): accuracy, macro-F1"
    baselines = ("majority", "char-ngram")
    importable = True
    messages: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "en": {"confusion": "Confusion matrix",
               "confusion_note": "Rows: reference label; columns: the model's answer "
                                 "({unparsed}: no label recognised, or the request failed)."},
        "fr": {"confusion": "Matrice de confusion",
               "confusion_note": "Lignes : étiquette de référence ; colonnes : réponse du "
                                 "modèle ({unparsed} : aucune étiquette reconnue, ou requête "
                                 "en échec)."},
        "ar": {"confusion": "مصفوفة الالتباس",
               "confusion_note": "الصفوف: التسمية المرجعية؛ الأعمدة: جواب النموذج ({unparsed}: "
                                 "لم تُعرف أي تسمية، أو فشل الطلب)."},
    }
    report_fragment: ClassVar[str | None] = """
{% from "_macros.html.j2" import model_name with context %}
<h4>{{ t("confusion") }}</h4>
<p class="meta">{{ t("confusion_note", unparsed="∅") }}</p>
{% for model, task in view.rows %}
{% set matrix = view.tallies[model.name] %}
<details{% if loop.first %} open{% endif %}>
  <summary>{{ model_name(model.name) }}</summary>
  <div class="scroll">
  <table class="confusion">
    <thead><tr><th scope="col">{{ t("col_reference") }}</th>
      {% for label in matrix.labels %}<th scope="col"><bdi>{{ label }}</bdi></th>{% endfor %}<th scope="col">{{ matrix.unparsed }}</th></tr></thead>
    <tbody>
    {% for ref in matrix.labels %}
      <tr><th scope="row"><bdi>{{ ref }}</bdi></th>
      {% for label in matrix.labels + [matrix.unparsed] %}
        {% set count = matrix.cells.get((ref, label), 0) %}
        <td class="{{ 'diag' if label == ref else ('off' if count else '') }}">{{ count if count else "" }}</td>
      {% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  </div>
</details>
{% endfor %}
"""  # noqa: E501

    def metrics(self) -> dict[str, MetricDef]:
        index = {label: i for i, label in enumerate(self.spec.labels)}

        def labels(record: PredictionRecord) -> Sequence[float]:
            parsed = record.get("parsed")
            return (index.get(str(record.get("reference")), MISSING),
                    index.get(parsed, MISSING) if isinstance(parsed, str) else MISSING)

        return {"accuracy": MetricDef("accuracy", labels, accuracy, resample="cells",
                                      whole_counts=True),
                "macro_f1": MetricDef("macro_f1", labels, macro_f1, resample="cells",
                                      whole_counts=True)}

    def parser(self) -> LabelParser:
        return LabelParser(self.spec.labels)

    def stratum(self, item: Item) -> str:
        return str(item["reference"])

    def audit_view(self, item: Item) -> AuditView:
        return {**super().audit_view(item), "label": str(item["reference"])}

    def constant_answer(self, references: Sequence[tuple[JSONValue, int]]) -> JSONValue:
        counts: Counter[str] = Counter()
        for reference, count in references:
            counts[str(reference)] += count
        return min(counts, key=lambda label: (-counts[label], label)) if counts else None

    def check_spec(self) -> list[str]:
        return [] if self.spec.labels else ["labels: a classification task needs labels"]

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        reference = item["reference"]
        if isinstance(reference, str) and reference in self.spec.labels:
            return []
        return [f"reference {reference!r} is not a label of task '{self.spec.name}'"
                f"{did_you_mean(str(reference), self.spec.labels)}"]

    @classmethod
    def import_task(cls, request: ImportRequest) -> JSONObject:
        labels = sorted({str(item["reference"]) for item in request.items})
        return {
            "type": cls.name,
            "description": f"Imported from {request.source.name}: classify the text.",
            "input_fields": ["text"],
            "labels": {label: {"description": ""} for label in labels},
            "prompt": {
                "system": "Classify the text into exactly one of the labels. Answer with the "
                          "label only.",
                "user": "Labels: {{ labels | join(', ') }}\n\nText: {{ text }}\nLabel:",
            },
        }

    def new_tally(self) -> Confusion:
        return Confusion(list(self.spec.labels))

