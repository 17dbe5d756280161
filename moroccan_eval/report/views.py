"""What the report's sections show, computed from model summaries and one pass over each
run's predictions: a view per task across models (confusion matrices and the like come
from the task type's tally), the items most models got wrong, failure examples, the
largest degradations and the robustness of perturbed runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from .. import varieties
from ..analysis.compare import Difference, compare_runs
from ..analysis.summary import ModelSummary, Score, TaskSummary
from ..errors import MoroccanEvalError
from ..io import JSONValue
from ..records import PredictionRecord
from ..runs.rundir import Run
from ..runs.scoring import ReferenceTally
from ..tasks.base import ReportTally, TaskType
from .worst import WrongAnswers

#: Items listed per variety in the error analysis, and examples per failure kind.
WORST_ITEMS = 5
EXAMPLES = 3
#: Longest model output or input quoted in the report; the rest is cut with an ellipsis.
QUOTE_CHARS = 240


class WrongAnswer(TypedDict):
    model: str
    answer: str
    parsed: JSONValue
    error: bool


class WorstItem(TypedDict):
    id: str
    variety: str
    reference: str
    input: str | None  # None when the run's inputs may hold personal data
    wrong: list[WrongAnswer]
    n_models: int


class Failures(TypedDict):
    unparsed: int
    errors: int
    unparsed_examples: list[str]
    error_kinds: list[tuple[str, int]]
    by_variety: list[tuple[str, int, int]]  # (variety, unparsed, errors) where not both 0
    trivial: float | None  # the headline metric of the same answer to every item
    no_better_than_trivial: bool


@dataclass
class TaskView:
    """One task of one suite across models: what the task sections show."""

    key: tuple[str, str]
    task_type: TaskType
    metric: str
    metrics: list[str]
    higher_is_better: bool  # of the headline metric
    reference: str
    varieties: list[str]
    rows: list[tuple[ModelSummary, TaskSummary]] = field(default_factory=list)
    tallies: dict[str, ReportTally] = field(default_factory=dict)
    worst: dict[str, list[WorstItem]] = field(default_factory=dict)
    failures: dict[str, Failures] = field(default_factory=dict)
    hidden_inputs: bool = False

    @property
    def type(self) -> str:
        return self.task_type.name

    @property
    def fragment(self) -> str | None:
        """The template name of the task type's report fragment, if it has one."""
        return fragment_name(self.task_type) if self.task_type.report_fragment else None

    def direction(self, metric: str) -> bool:
        """Whether larger values of ``metric`` are better."""
        return self.task_type.higher_is_better(metric)

    def best_per_variety(self) -> dict[str, tuple[str, float, float | None]]:
        """Per variety: the best model, its quality (larger is better) and its metric value
        as reported (an attack or error rate stays a rate)."""
        best: dict[str, tuple[str, float, float | None]] = {}
        for model, task in self.rows:
            for code, score in task.varieties.items():
                quality = task.quality(score)
                if quality is not None and (code not in best or quality > best[code][1]):
                    best[code] = (model.name, quality, score.value)
        return best


def fragment_name(task_type: TaskType | type[TaskType]) -> str:
    return f"task_types/{task_type.name}.html.j2"


def task_views(models: Sequence[ModelSummary]) -> list[TaskView]:
    views: dict[tuple[str, str], TaskView] = {}
    order = list(varieties.registry())
    for model in models:
        for task in model.tasks:
            view = views.setdefault(task.key, TaskView(
                key=task.key, task_type=task.task_type, metric=task.metric,
                metrics=task.metrics, higher_is_better=task.higher_is_better,
                reference=task.reference, varieties=[],
            ))
            view.rows.append((model, task))
            view.varieties += [c for c in task.varieties if c not in view.varieties]
    for view in views.values():
        view.varieties.sort(key=lambda c: order.index(c) if c in order else len(order))
        view.rows.sort(key=lambda row: -(row[1].quality(row[1].overall) or 0.0))
    return list(views.values())


def quote(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


@dataclass
class _Reading:
    """What the report collects about one model on one task while reading predictions."""

    view: TaskView
    index: int  # the view's
    model: str
    hidden: bool
    tally: ReportTally | None
    task: TaskSummary
    references: ReferenceTally | None  # for the trivial score, if the type has one
    unparsed: int = 0
    errors: int = 0
    unparsed_examples: list[str] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)

    def add(self, record: PredictionRecord) -> None:
        if self.tally is not None:
            self.tally.add(record)
        if self.references is not None:
            self.references.add(record)
        error = record.get("error")
        if error:
            self.errors += 1
            self.error_kinds[str(error).split(":")[0][:80]] += 1
        elif record.get("parsed") is None:
            self.unparsed += 1
            if len(self.unparsed_examples) < EXAMPLES:
                self.unparsed_examples.append(quote(record.get("output")))

    def failures(self, task: TaskSummary) -> Failures:
        trivial = (self.references.trivial_score(task.metric)
                   if self.references is not None else None)
        value = task.overall.value
        return {"unparsed": self.unparsed, "errors": self.errors,
                "unparsed_examples": self.unparsed_examples,
                "error_kinds": self.error_kinds.most_common(EXAMPLES),
                "by_variety": [(code, v.unparsed, v.errors)
                               for code, v in task.scores.varieties.items()
                               if v.unparsed or v.errors],
                "trivial": trivial,
                "no_better_than_trivial": value is not None and trivial is not None and (
                    value <= trivial if task.higher_is_better else value >= trivial)}

    def worst_item(self, record: PredictionRecord, n_models: int) -> WorstItem:
        """The entry of an item chosen among the worst, from a model's record of it."""
        return {"id": record["id"], "variety": record["variety"],
                "reference": quote(self.view.task_type.show_reference(record.get("reference"))),
                "input": None if self.hidden else quote(" · ".join(
                    v for v in (record.get("fields") or {}).values()
                    if isinstance(v, str) and v)),
                "wrong": [], "n_models": n_models}

    def wrong_answer(self, record: PredictionRecord) -> WrongAnswer:
        answer, shown = self.view.task_type.show_answer(record)
        error = record.get("error")
        return {"model": self.model, "answer": quote(error or answer), "parsed": shown,
                "error": bool(error)}


def read_predictions(views: list[TaskView]) -> None:
    """The task types' tallies, the items most models got wrong per variety, and examples
    of parse failures and API errors: one pass over each run's predictions, then the lines
    of the chosen items again. Nothing holds every item (the items are ranked on disk,
    :mod:`moroccan_eval.report.worst`)."""
    by_run: dict[Path, tuple[Run, dict[str, _Reading]]] = {}
    for index, view in enumerate(views):
        for model, task in view.rows:
            hidden = task.run.manifest.allow_unanonymized
            view.hidden_inputs |= hidden
            readings = by_run.setdefault(task.run.path, (task.run, {}))[1]
            readings[task.task] = _Reading(
                view, index, model.name, hidden, task.task_type.new_tally(), task,
                ReferenceTally(task.task_type) if task.task_type.has_trivial_baseline else None)
    answers = WrongAnswers()
    try:
        for run_index, (run, readings) in enumerate(by_run.values()):
            for line, record in run.numbered_predictions():
                reading = readings.get(record["task"])
                if reading is None or record.get("skipped"):
                    continue
                reading.add(record)
                answers.add(reading.index, record["id"], run_index, line, record["variety"],
                            not record.get("correct"))
        chosen = answers.worst(WORST_ITEMS)
        lines = answers.lines(chosen)
    finally:
        answers.close()
    for _, readings in by_run.values():
        for reading in readings.values():
            if reading.tally is not None:
                reading.view.tallies[reading.model] = reading.tally
            reading.view.failures[reading.model] = reading.failures(reading.task)
    items = {(c.view, c.id): c.n_models for c in chosen}
    found: dict[tuple[int, str], WorstItem] = {}
    for run_index, (run, readings) in enumerate(by_run.values()):
        if run_index not in lines:
            continue  # none of its answers is quoted
        for _, record in run.numbered_predictions(lines[run_index]):
            reading = readings[record["task"]]
            key = (reading.index, record["id"])
            item = found.get(key)
            if item is None:
                item = found[key] = reading.worst_item(record, items[key])
            if not record.get("correct"):
                item["wrong"].append(reading.wrong_answer(record))
    worst: dict[tuple[int, str], list[WorstItem]] = {}
    for c in chosen:
        worst.setdefault((c.view, c.variety), []).append(found[(c.view, c.id)])
    for index, view in enumerate(views):
        view.worst = {code: worst[(index, code)] for code in view.varieties
                      if (index, code) in worst}


@dataclass(frozen=True)
class Degradation:
    model: str
    task: str
    variety: str
    reference: str
    score: Score
    drop: float  # the delta oriented so that negative is worse


def degradations(views: Sequence[TaskView], limit: int = 8) -> list[Degradation]:
    """The largest drops against the reference variety, significant ones first."""
    found = []
    for view in views:
        for model, task in view.rows:
            for code, score in task.varieties.items():
                if score.delta is None:
                    continue
                drop = score.delta if task.higher_is_better else -score.delta
                if drop < 0:
                    found.append(Degradation(model.name, view.key[1], code, view.reference,
                                             score, drop))
    found.sort(key=lambda d: (not d.score.significant, d.drop))
    return found[:limit]


class RobustnessRow(TypedDict):
    model: str
    perturbation: str
    task: str
    metric: str
    cells: dict[str, Difference]  # variety -> paired change


def robustness(runs: Sequence[Run]) -> list[RobustnessRow]:
    """For every perturbed run, the paired change of each task's first metric against the
    clean run of the same model, suite and split."""

    def key(run: Run) -> tuple[str, str, str]:
        return (run.model, run.manifest.suite.ident, run.manifest.selection.split)

    clean = {key(r): r for r in runs if not r.manifest.selection.perturb}
    rows: list[RobustnessRow] = []
    for run in runs:
        perturbation = run.manifest.selection.perturb
        base = clean.get(key(run))
        if not perturbation or base is None:
            continue
        try:
            diffs = compare_runs(base, run)
        except MoroccanEvalError:
            continue  # no shared item to pair
        for task in sorted({d.task for d in diffs}):
            metric = base.manifest.tasks[task].spec.metrics[0]
            cells = {d.variety: d for d in diffs if d.task == task and d.metric == metric}
            rows.append({"model": run.model, "perturbation": perturbation, "task": task,
                         "metric": metric, "cells": cells})
    return rows
