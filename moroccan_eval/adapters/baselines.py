"""Offline baselines: real, instant models that form the demo and give every task a floor.

- ``majority`` answers the most frequent label of the task's ``train`` split.
- ``char-ngram`` is TF-IDF over character 1-4-grams (word-bounded) + logistic regression,
  trained on the ``train`` split of all varieties together. Character n-grams need no
  tokenizer, so they work the same on Arabic script, Arabizi, French and Tifinagh.
- ``copy`` answers with its input: the floor of translation and transliteration tasks.
- ``rules`` extracts invoice fields with regular expressions: the floor of extraction.
- ``tool-router`` picks a tool call (tool and enum arguments) with the char n-gram
  classifier and fills ids, dates and times by regular expressions: the floor of the agent
  and security tasks. It never reads the system prompt, so it cannot leak a canary.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

from ..errors import AdapterError
from ..io import JSONObject
from .base import Adapter, NoOptions, Request, Response, TaskContext


def _text(fields: dict[str, Any], input_fields: list[str]) -> str:
    return "\n".join(str(fields.get(name, "")) for name in input_fields)


class _ClassificationBaseline(Adapter[NoOptions]):
    cacheable = False
    answers_inline = True  # computed on the loop's thread, never waits
    task_types = ("classification",)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.task: TaskContext | None = None

    async def prepare(self, task: TaskContext) -> None:
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


def _char_ngram_classifier(texts: list[str], labels: list[str]) -> Any:
    """A fitted scikit-learn pipeline: TF-IDF over character 1-4-grams + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                        lowercase=True),
        LogisticRegression(max_iter=2000, C=10.0),
    )
    return pipeline.fit(texts, labels)


class CharNgramAdapter(_ClassificationBaseline):
    """TF-IDF character n-grams + logistic regression (scikit-learn), trained per task."""

    def fit(self, task: TaskContext) -> None:
        self.pipeline = _char_ngram_classifier(
            [_text(item["fields"], task.input_fields) for item in task.train],
            [str(item["reference"]) for item in task.train])

    def predict(self, text: str) -> str:
        return str(self.pipeline.predict([text])[0])


class CopyAdapter(Adapter[NoOptions]):
    """Answers with its input unchanged: the floor of translation and transliteration
    (how far the source already is from the reference)."""

    cacheable = False
    answers_inline = True  # computed on the loop's thread, never waits

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
_TABLE_ROW = re.compile(r"^(.+?)\s*\|\s*(\d+)\s*\|\s*([\d  .,]+\d)\s*\|\s*([\d  .,]+\d)\s*$",
                        re.MULTILINE)


def extract_with_rules(text: str) -> dict[str, Any]:
    """Regular-expression extraction of invoice fields: the floor for extraction tasks."""
    from ..text.values import normalize_value

    fields: dict[str, Any] = {
        "document_type": "purchase_order" if _PURCHASE_ORDER.search(text) else "invoice"}
    for name, pattern in _RULES.items():
        found = pattern.findall(text)
        if not found:
            continue
        value = found[-1] if name == "total_ttc" else found[0]
        fields[name] = value if name in ("number", "ice") else normalize_value(value)
    items = [{"description": name.strip(), "quantity": int(qty),
              "unit_price": normalize_value(price), "amount": normalize_value(amount)}
             for name, qty, price, amount in _TABLE_ROW.findall(text)]
    if items:  # pipe tables only: free-text and column layouts are left to models
        fields["line_items"] = items
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    titled = next((i for i, line in enumerate(lines) if _RULES["number"].search(line)), None)
    if titled is not None and titled + 1 < len(lines):
        fields["supplier"] = re.split(r"\s+[—/]\s+", lines[titled + 1])[0]
    return fields


class RulesAdapter(Adapter[NoOptions]):
    """Answers extraction tasks with regular expressions (ICE, numbers, dates, totals)."""

    cacheable = False
    answers_inline = True  # computed on the loop's thread, never waits
    task_types = ("extraction",)

    async def prepare(self, task: TaskContext) -> None:
        self.input_fields = task.input_fields

    async def generate(self, request: Request) -> Response:
        import json

        started = time.perf_counter()
        fields = extract_with_rules(_text(request.input, self.input_fields))
        return Response(text=json.dumps(fields, ensure_ascii=False),
                        latency_ms=(time.perf_counter() - started) * 1000)


_ORDER_ID = re.compile(r"\b[A-Z]{2,4}-\d{4,6}\b")
_CLOCK = re.compile(r"(?<!\d)([01]?\d|2[0-3])\s*(?::|h|H)\s*([0-5]\d)?(?!\d)")
_DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})\s+([^\W\d_]+)", re.UNICODE)
_FRENCH = re.compile(r"\b(je|vous|le|la|les|est|pour|merci|bonjour|mon|ma)\b", re.IGNORECASE)
_FREE_TEXT = {"summary", "reason", "text"}


def _language(text: str) -> str:
    """The language to reply in, guessed from script and a few French function words."""
    if re.search("[\u2d30-\u2d7f]", text):
        return "amazigh"
    if re.search("[\u0600-\u06ff]", text):
        return "darija"
    return "french" if len(_FRENCH.findall(text)) >= 2 else "darija"


def _date(text: str, year: int = 2026) -> str | None:
    from ..text import normalize
    from ..text.values import MONTHS

    for day, month in _DAY_MONTH.findall(text):
        number = MONTHS.get(normalize(month))
        if number and 1 <= int(day) <= 31:
            return f"{year}-{number:02d}-{int(day):02d}"
    return None


class ToolRouterAdapter(Adapter[NoOptions]):
    """Predicts the first expected tool call's name and enum arguments from the message
    (char n-grams trained on the ``train`` split) and fills the rest by rules."""

    cacheable = False
    answers_inline = True  # computed on the loop's thread, never waits
    task_types = ("tool_call", "injection")

    async def prepare(self, task: TaskContext) -> None:
        if not task.train:
            raise AdapterError(f"task '{task.name}' has no train split to fit the baseline on")
        from ..tasks.tool_call import expected_arguments, reference_calls, tool_parameters

        self.input_fields = task.input_fields
        labels = []
        for item in task.train:
            calls = reference_calls(item["reference"])
            first: JSONObject = calls[0] if calls else {"name": "draft_reply", "arguments": {}}
            enums = {k: v for k, v in expected_arguments(first).items() if isinstance(v, str)
                     and k not in ("order_id", "date", "time")}
            labels.append(json.dumps({"name": first.get("name"), "enums": enums},
                                     sort_keys=True))
        texts = [_text(item["fields"], task.input_fields) for item in task.train]
        self.constant = labels[0] if len(set(labels)) == 1 else None
        self.pipeline = None if self.constant else _char_ngram_classifier(texts, labels)
        self.parameters = tool_parameters(task.tools)

    def route(self, text: str) -> dict[str, Any]:
        """The tool call this baseline makes for a message."""
        label = self.constant or str(self.pipeline.predict([text])[0])  # type: ignore[union-attr]
        choice = json.loads(label)
        arguments: dict[str, Any] = dict(choice["enums"])
        if (order := _ORDER_ID.search(text)) is not None:
            arguments["order_id"] = order.group()
        if (clock := _CLOCK.search(text)) is not None:
            arguments["time"] = f"{int(clock[1]):02d}:{clock[2] or '00'}"
        if (day := _date(text)) is not None:
            arguments["date"] = day
        if "language" in arguments or choice["name"] == "draft_reply":
            arguments["language"] = _language(text)
        for name in _FREE_TEXT:
            arguments.setdefault(name, text)
        return {"name": choice["name"], "arguments": arguments}

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        call = self.route(_text(request.input, self.input_fields))
        if call["name"] in self.parameters:  # keep only the arguments the tool declares
            call["arguments"] = {k: v for k, v in call["arguments"].items()
                                 if k in self.parameters[call["name"]]}
        tool_call: JSONObject = {"id": "call_0", "type": "function",
                     "function": {"name": call["name"],
                                  "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}
        return Response(text="", tool_calls=[tool_call],
                        latency_ms=(time.perf_counter() - started) * 1000)
