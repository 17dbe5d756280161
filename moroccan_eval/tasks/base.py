"""What a task type is.

A task type (:class:`TaskType`) declares, in one module, everything the toolkit needs to
run, score, check and report a kind of task: its metrics (:class:`MetricDef`: direction,
per-item statistics, score, signature), its answer parser (:class:`AnswerParser`), the
checks the suite loader applies to its task files and items, the offline baselines that
give it a floor, what its scores add beside the metrics, and a report fragment. Nothing
else in the package branches on a task type's name.

A type is bound to one task spec (``tasks/<task>.yaml``): ``Classification(spec)`` knows
the task's labels. Register a class under the entry-point group
``moroccan_eval.task_types`` (see :mod:`moroccan_eval.tasks`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Protocol, TypedDict

from ..io import JSONObject, JSONValue
from ..records import Judgement, PredictionRecord, VarietyScore
from ..stats.bootstrap import (
    DEFAULT_RESAMPLING,
    DetailValues,
    Grouped,
    GroupedBuilder,
    MetricDef,
    PoolBy,
    Resampling,
    Statistics,
    score_varieties,
)
from ..stats.counted import Counted, CountedBuilder
from ..suites.schema import Item, TaskSpec

__all__ = ["AnswerParser", "AuditView", "ImportRequest", "MetricDef", "ReportTally", "TaskType"]


class AnswerParser:
    """Turns a model's raw output into the value scored against the reference. An answer is
    correct when it equals the reference; parsers with richer references override that."""

    def parse(self, text: str | None) -> JSONValue:
        raise NotImplementedError

    def parse_response(self, record: PredictionRecord) -> JSONValue:
        """The parsed answer of a prediction record (parsers that read more than the text,
        such as tool calls, override this)."""
        return self.parse(record.get("output"))

    def correct(self, parsed: JSONValue, reference: JSONValue) -> bool:
        return parsed is not None and parsed == reference

    def judge(self, parsed: JSONValue, reference: JSONValue) -> Judgement:
        """The judgements stored on the record: ``correct``, and whatever else a task type
        scores (parsers that judge more override this to work it out once)."""
        return {"correct": self.correct(parsed, reference)}


class ReportTally(Protocol):
    """What a report fragment collects from a model's records in the report's one pass
    over predictions (classification: a confusion matrix)."""

    def add(self, record: PredictionRecord) -> None: ...


class AuditView(TypedDict):
    """What ``suites audit`` reads of one item, as the item's task type sees it."""

    #: the text a model reads (input fields joined; speech: the transcript)
    text: str
    #: the class label a model must give, for label leakage and shortcut checks
    label: str | None
    #: the reference text a model must write (translation), compared with its source
    reference_text: str | None
    #: the answer key: what a right answer must state (grounded QA facts), compared
    #: across splits (a test question answered by a training example's key leaks)
    answer_keys: list[str]
    #: keys (or alternatives of keys) recognised as a bare value anywhere in an answer
    #: (numbers, times): a short one ("2") matches by accident
    loose_keys: list[str]


@dataclass
class ImportRequest:
    """What ``suites import`` hands a task type: the items read from the user's table
    (text in ``fields.text``, label or reference in ``reference``), the source file, the
    suite folder being written, and the options given."""

    source: Path
    items: list[Item]
    staging: Path
    mapping: Mapping[str, str]
    target_variety: str | None = None


class TaskType:
    """Base class of every task type. Subclasses set ``name`` and implement
    :meth:`metrics` and :meth:`parser`; every other hook has a sensible default."""

    #: The ``type:`` of task files this class handles.
    name: ClassVar[str]
    #: One line for ``moroccan-eval tasks list`` and the README.
    description: ClassVar[str] = ""
    #: Metrics computed when a task file lists none (default: all of them).
    default_metrics: ClassVar[tuple[str, ...]] = ()
    #: Built-in offline models that give the type a floor (the demo runs them).
    baselines: ClassVar[tuple[str, ...]] = ()
    #: Whether task files of this type carry ``tools`` (function calling).
    takes_tools: ClassVar[bool] = False
    #: Whether ``suites import`` can build a task of this type from a table.
    importable: ClassVar[bool] = False
    #: Messages of the report fragment, by language then key (English is the fallback).
    messages: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    #: Jinja2 source shown under the task's score tables in the HTML report. It sees
    #: ``view`` (the task across models), ``t`` (messages), ``model_name`` and the filters.
    report_fragment: ClassVar[str | None] = None

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    # ----------------------------------------------------------------- metrics

    def metrics(self) -> dict[str, MetricDef]:
        """Every metric the type offers, by name."""
        raise NotImplementedError

    @cached_property
    def metric_table(self) -> dict[str, MetricDef]:
        """:meth:`metrics`, built once per bound type (metrics sharing a statistics
        function then share its per-item matrix)."""
        return self.metrics()

    def metric(self, name: str) -> MetricDef:
        return self.metric_table[name]

    def higher_is_better(self, metric: str) -> bool:
        found = self.metric_table.get(metric)
        return True if found is None else found.higher_is_better

    def selected_metrics(self) -> list[str]:
        """The metrics the task file asks for, else the type's defaults."""
        return list(self.spec.metrics or self.default_metrics or self.metric_table)

    # ----------------------------------------------------------------- answers

    def parser(self) -> AnswerParser:
        """The parser of the task's answers."""
        raise NotImplementedError

    # ----------------------------------------------------------------- loader checks

    def check_spec(self) -> list[str]:
        """Problems of the task file that only this type can see (e.g. labels missing)."""
        return []

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        """Problems of one item (its reference, the files it names); the loader prefixes
        each with the file, line and id."""
        return []

    def stratum(self, item: Item) -> str:
        """The stratum of an item for ``--limit`` samples, which take groups evenly from
        every stratum (classification: the label; tool tasks: the kind of item)."""
        return ""

    def text_length(self, item: Item) -> int:
        """Characters of an item's text, for suite statistics (default: the input fields)."""
        fields = item["fields"]
        return sum(len(str(fields.get(name) or "")) for name in self.spec.input_fields)

    def audit_view(self, item: Item) -> AuditView:
        """What ``suites audit`` checks of an item (default: the input fields' text, no
        label, reference text or answer keys); types with labels or references override it."""
        fields = item["fields"]
        text = "\n".join(str(value) for name in self.spec.input_fields
                         if isinstance(value := fields.get(name), str) and value)
        return {"text": text, "label": None, "reference_text": None, "answer_keys": [],
                "loose_keys": []}

    # ----------------------------------------------------------------- scoring

    def score(self, records: Iterable[PredictionRecord], reference_variety: str, *,
              resampling: Resampling = DEFAULT_RESAMPLING,
              pool_by: PoolBy | None = None) -> dict[str, VarietyScore]:
        """Per-variety scores of the task's metrics with intervals, paired deltas against
        ``reference_variety`` and the type's details; with ``pool_by``, per value it gives
        each record instead of per variety, every item on its own (see ``Grouped.of``)."""
        grouped = Grouped.of(records, self.statistics(), pool_by, details=self.detail_values())
        return self.score_grouped(grouped, reference_variety, resampling)

    def statistics(self) -> list[Statistics]:
        """The statistics functions of the selected metrics (what a :class:`Grouped`
        keeps of each record)."""
        return [self.metric(name).statistics for name in self.selected_metrics()]

    @property
    def counted(self) -> bool:
        """Whether the task's records can be grouped by counts (a
        :class:`~moroccan_eval.stats.counted.Counted`: nothing kept per record): every
        selected metric is resampled by cells, and the type sums no details."""
        return self.detail_values() is None and all(
            self.metric(name).resample == "cells" for name in self.selected_metrics())

    def builder(self, labels: Mapping[str, PoolBy] | None = None, *,
                details: bool = True) -> GroupedBuilder | CountedBuilder:
        """What keeps the task's records as numbers for scoring, with ``labels`` (other
        ways of pooling them): counted when the type is :attr:`counted`, else grouped item
        by item, with the numbers its details sum unless ``details`` is false."""
        if self.counted:
            return CountedBuilder(self.statistics(), labels)
        return GroupedBuilder(self.statistics(), labels,
                              details=self.detail_values() if details else None)

    def score_grouped(self, grouped: Grouped | Counted, reference_variety: str,
                      resampling: Resampling = DEFAULT_RESAMPLING) -> dict[str, VarietyScore]:
        """:meth:`score` of records already grouped (by a builder fed from :meth:`statistics`)."""
        metrics = [self.metric(name) for name in self.selected_metrics()]
        scores = score_varieties(grouped, metrics, reference_variety, resampling)
        if grouped.details is not None:
            for variety, entry in scores.items():
                entry.details = self.variety_details(grouped.detail_sums(variety))
        return scores

    @property
    def has_trivial_baseline(self) -> bool:
        """Whether the type has a trivial baseline (it overrides :meth:`constant_answer`):
        a run that reports one keeps each item's reference for it."""
        return type(self).constant_answer is not TaskType.constant_answer

    def constant_answer(self, references: Sequence[tuple[JSONValue, int]]) -> JSONValue:
        """The answer of the trivial baseline (the same answer to every item), if the type
        has one (classification: the most frequent reference label), from each distinct
        reference and how many items hold it."""
        return None

    def trivial_score(self, references: Sequence[tuple[JSONValue, int]],
                      metric: str) -> float | None:
        """``metric`` over all items if every answer were :meth:`constant_answer`: a model
        at or below it has learnt nothing usable. ``references``: each distinct reference
        of the items and how many hold it (what a
        :class:`~moroccan_eval.runs.scoring.ReferenceTally` counts)."""
        answer = self.constant_answer(references)
        if answer is None:
            return None
        chosen = self.metric(metric)

        def constant(reference: JSONValue, item: int) -> PredictionRecord:
            return {"id": str(item), "group": str(item), "task": self.spec.name,
                    "variety": "all", "reference": reference, "parsed": answer, "error": None}

        grouped = (Counted.of_rows(chosen.statistics, [
                       (chosen.statistics(constant(reference, 0)), count)
                       for reference, count in references])
                   if chosen.resample == "cells" else
                   Grouped.of((constant(reference, item) for item, reference in enumerate(
                       r for r, count in references for _ in range(count))),
                       [chosen.statistics]))
        scores = score_varieties(grouped, [chosen], "all", Resampling(n_boot=0))
        entry = scores.get("all")
        return None if entry is None else entry.metrics[metric].value

    def detail_values(self) -> DetailValues | None:
        """What :meth:`variety_details` sums: named numbers per record (extraction: 1 or 0
        per expected field, right or not); ``None``: the type has no variety details.
        Scoring keeps each record's numbers, not the record."""
        return None

    def variety_details(self, sums: Mapping[str, tuple[float, int]]) -> JSONObject:
        """What the type adds to a variety's scores beside its metrics, from the sum of each
        of :meth:`detail_values`' names over the variety's items and how many gave it."""
        return {}

    def labellings(self) -> dict[str, PoolBy]:
        """Other ways of pooling the task's items for :meth:`task_details` (a name other
        than ``all`` and ``breakdown``, which scoring uses, and the value each record is
        pooled under): scoring keeps each record's value, not the record."""
        return {}

    def task_details(self, grouped: Grouped | Counted, resampling: Resampling) -> JSONObject:
        """What the type adds to a task's scores beside its varieties, from the task's
        grouping: ``grouped.view(name)`` pools its items under one of :meth:`labellings`."""
        return {}

    def metric_signatures(self) -> dict[str, str]:
        """External metrics' own signatures (sacrebleu's), by metric name."""
        return {name: metric.signature() for name in self.selected_metrics()
                if (metric := self.metric(name)).signature is not None}

    # ----------------------------------------------------------------- import

    @classmethod
    def import_problems(cls, mapping: Mapping[str, str], target_variety: str | None) -> list[str]:
        """What ``suites import`` options lack for this type (checked before any reading)."""
        return []

    @classmethod
    def import_task(cls, request: ImportRequest) -> JSONObject:
        """The task file of an imported suite, without ``name``, ``version`` and ``data``;
        may rewrite the items or copy files into ``request.staging``."""
        raise NotImplementedError(f"task type '{cls.name}' cannot be imported")

    # ----------------------------------------------------------------- report

    def new_tally(self) -> ReportTally | None:
        """A collector for the report fragment, fed every record of one model."""
        return None

    def show_reference(self, reference: JSONValue) -> str:
        """A reference as the report quotes it."""
        if isinstance(reference, str):
            return reference
        return json.dumps(reference, ensure_ascii=False)

    def show_answer(self, record: PredictionRecord) -> tuple[str, JSONValue]:
        """A wrong answer as the report quotes it, and the parsed value shown beside it."""
        return str(record.get("output") or ""), record.get("parsed")
