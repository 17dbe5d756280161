"""Offline baselines: real, instant models that form the demo and give every task a floor.

- ``majority`` answers the most frequent label of the task's ``train`` split.
- ``char-ngram`` is TF-IDF over character 1-4-grams (word-bounded) + logistic regression,
  trained on the ``train`` split of all varieties together. Character n-grams need no
  tokenizer, so they work the same on Arabic script, Arabizi, French and Tifinagh.
- ``copy`` answers with its input: the floor of translation and transliteration tasks.
- ``rules`` extracts invoice fields with regular expressions: the floor of extraction.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from ..errors import AdapterError
from .base import Adapter, NoOptions, Request, Response, TaskContext


def _text(fields: dict[str, Any], input_fields: list[str]) -> str:
    return "\n".join(str(fields.get(name, "")) for name in input_fields)


class _ClassificationBaseline(Adapter[NoOptions]):
    cacheable = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.task: TaskContext | None = None

    async def prepare(self, task: TaskContext) -> None:
        if task.type != "classification":
            raise AdapterError(
                f"baseline '{self.spec.adapter}' only handles classification tasks, "
                f"not '{task.name}' ({task.type})"
            )
        if not task.train:
            raise AdapterError(f"task '{task.name}' has no train split to fit the baseline on")
        self.task = task
        self.fit(task)

    def fit(self, task: TaskContext) -> None:
        raise NotImplementedError

    def predict(self, text: str) -> str:
        raise NotImplementedError

    async def generate(self, request: Request) -> Response:
        if self.task is None:
            raise AdapterError(f"baseline '{self.spec.adapter}' used before prepare()")
        started = time.perf_counter()
        label = self.predict(_text(request.input, self.task.input_fields))
        return Response(text=label, latency_ms=(time.perf_counter() - started) * 1000)


class MajorityAdapter(_ClassificationBaseline):
    """Always answers the most frequent ``train`` label (ties: first in label order)."""

    def fit(self, task: TaskContext) -> None:
        counts = Counter(item["reference"] for item in task.train)
        self.label = max(task.labels, key=lambda lab: counts.get(lab, 0))

    def predict(self, text: str) -> str:
        return self.label


class CharNgramAdapter(_ClassificationBaseline):
    """TF-IDF character n-grams + logistic regression (scikit-learn), trained per task."""

    def fit(self, task: TaskContext) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        texts = [_text(item["fields"], task.input_fields) for item in task.train]
        labels = [item["reference"] for item in task.train]
        self.pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                            lowercase=True),
            LogisticRegression(max_iter=2000, C=10.0),
        )
        self.pipeline.fit(texts, labels)

    def predict(self, text: str) -> str:
        return str(self.pipeline.predict([text])[0])


class CopyAdapter(Adapter[NoOptions]):
    """Answers with its input unchanged: the floor of translation and transliteration
    (how far the source already is from the reference)."""

    cacheable = False

    async def prepare(self, task: TaskContext) -> None:
        self.input_fields = task.input_fields

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        text = _text(request.input, getattr(self, "input_fields", list(request.input)))
        return Response(text=text, latency_ms=(time.perf_counter() - started) * 1000)


_RULES = {
    "number": re.compile(r"(?:N°|No|رقم)\s*[:#]?\s*([A-Z]{1,3}[-/]?\d{4}[-/]\d{3,6})"),
    "ice": re.compile(r"(?<!\d)(\d{15})(?!\d)"),
    "date": re.compile(r"(\d{1,2}[/.-]\d{1,2}[/.-]\d{4}|\d{1,2}\s+\S+\s+\d{4})"),
    "total_ht": re.compile(r"(?:Total HT|HT|دون احتساب الرسوم|بدون رسوم)[^:\n]*:\s*([\d  .,]+\d)"),
    "tva": re.compile(r"(?:TVA|الضريبة)[^:\n]*:\s*([\d  .,]+\d)"),
    "total_ttc": re.compile(
        r"(?:Total TTC|TTC|مع احتساب الرسوم|المجموع)\s*[^:\n]*:\s*([\d  .,]+\d)"),
}
_PURCHASE_ORDER = re.compile(r"bon de commande|سند طلب", re.IGNORECASE)


def extract_with_rules(text: str) -> dict[str, str]:
    """Regular-expression extraction of invoice fields: the floor for extraction tasks."""
    from ..scoring import normalize_value

    fields: dict[str, str] = {
        "document_type": "purchase_order" if _PURCHASE_ORDER.search(text) else "invoice"}
    for name, pattern in _RULES.items():
        found = pattern.findall(text)
        if not found:
            continue
        value = found[-1] if name == "total_ttc" else found[0]
        fields[name] = value if name in ("number", "ice") else normalize_value(value)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    titled = next((i for i, line in enumerate(lines) if _RULES["number"].search(line)), None)
    if titled is not None and titled + 1 < len(lines):
        fields["supplier"] = re.split(r"\s+[—/]\s+", lines[titled + 1])[0]
    return fields


class RulesAdapter(Adapter[NoOptions]):
    """Answers extraction tasks with regular expressions (ICE, numbers, dates, totals)."""

    cacheable = False

    async def prepare(self, task: TaskContext) -> None:
        if task.type != "extraction":
            raise AdapterError(f"baseline 'rules' only handles extraction tasks, not "
                               f"'{task.name}' ({task.type})")
        self.input_fields = task.input_fields

    async def generate(self, request: Request) -> Response:
        import json

        started = time.perf_counter()
        fields = extract_with_rules(_text(request.input, self.input_fields))
        return Response(text=json.dumps(fields, ensure_ascii=False),
                        latency_ms=(time.perf_counter() - started) * 1000)
