"""Scoring a run: each record's judgements from its raw output, then ``scores.json``.

Every number comes from the task's type (:mod:`moroccan_eval.tasks`) through the one
bootstrap engine; this module only groups records by task and adds usage (latency,
tokens, cost).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import cast

from .. import tasks
from ..costing import convert, latency_stats
from ..errors import RunError
from ..io import JSONValue, atomic_path, json_line, write_json
from ..records import (
    Breakdown,
    Manifest,
    PredictionRecord,
    RunScores,
    Signature,
    TaskScores,
    Usage,
    VarietyScore,
)
from ..stats.bootstrap import Grouped, PoolBy, Resampling
from ..stats.counted import Counted, CountedBuilder
from ..stats.spill import FloatColumn
from ..tasks.base import AnswerParser, TaskType
from .rundir import PREDICTIONS, SCORES, Run


def finalize_record(record: PredictionRecord, parser: AnswerParser) -> PredictionRecord:
    """Derive ``parsed``, ``correct`` and the parser's other judgements (QA: ``refused``;
    tool tasks: ``outcomes``) from the record's raw output."""
    if not record.get("error") and not record.get("skipped"):
        record["parsed"] = parser.parse_response(record)
    judgement = parser.judge(record.get("parsed"), record.get("reference"))
    record["correct"] = judgement["correct"]
    if "refused" in judgement:
        record["refused"] = judgement["refused"]
    if "outcomes" in judgement:
        record["outcomes"] = judgement["outcomes"]
    return record


def reparse(manifest: Manifest, records: Iterable[PredictionRecord]
            ) -> Iterator[PredictionRecord]:
    """Re-derive the judgements of stored records with the task types' parsers."""
    parsers = {name: tasks.for_spec(info.spec).parser() for name, info in manifest.tasks.items()}
    for record in records:
        parser = parsers.get(record["task"])
        yield finalize_record(record, parser) if parser is not None else record


class RunTally:
    """What scoring keeps of a run's records, taken one at a time as the run writes them
    (or as :func:`compute_scores` reads them), so that nothing holds every record: a
    :class:`TaskTally` per task of the manifest, and the count of live answers (for
    measured hosting costs). With ``trivial``, each task keeps what its trivial baseline
    reads too."""

    def __init__(self, manifest: Manifest, *, trivial: bool = False):
        self.manifest = manifest
        self.tasks = {name: TaskTally(tasks.for_spec(info.spec), trivial=trivial)
                      for name, info in manifest.tasks.items()}
        self.live = 0

    def add(self, record: PredictionRecord, line: str | None = None) -> None:
        """Take ``record``; ``line`` is the JSON line it was written as: a record whose
        values do not read back as they are (a tuple, a NaN) is scored as read back, so
        the scores are those of the file either way."""
        if line is not None and not _reads_back_as_is(record):
            record = cast(PredictionRecord, json.loads(line))
        if not (record.get("error") or record.get("skipped") or record.get("cached")):
            self.live += 1
        tally = self.tasks.get(record["task"])
        if tally is not None:  # a task the manifest does not list is not scored
            tally.add(record)

    def measured_hosting_per_request(self, wall_s: float | None) -> float | None:
        """A self-hosted model's ``hosting_per_hour`` over the run's measured wall time,
        shared by the requests it answered live; ``None`` when there is nothing measured
        to share (no hosting price, no wall time, or every answer came from the cache)."""
        rate = self.manifest.model.spec.pricing.hosting_per_hour
        if not rate or not wall_s or not self.live:
            return None
        return rate * wall_s / 3600.0 / self.live


#: The breakdown row of records whose item has no value for the breakdown's meta key.
NO_VALUE = "(none)"


class TaskTally:
    """One task's records as numbers: their statistics per variety, labelled for the
    pooled and breakdown scores and the type's own labellings, and their usage
    (:class:`UsageTally`); with ``trivial``, each record's reference, for a type that has a
    trivial baseline. No record is kept.

    A type whose metrics are all resampled by cells (labels) is counted
    (:class:`~moroccan_eval.stats.counted.CountedBuilder`: nothing per record in memory past
    a few thousand, so a run of a million items is scored in the memory of one of ten
    thousand); any other keeps its items' rows and the numbers its details sum
    (:class:`~moroccan_eval.stats.bootstrap.GroupedBuilder`): its bootstrap reads them
    item by item."""

    def __init__(self, task_type: TaskType, *, trivial: bool):
        self.task_type = task_type
        labels: dict[str, PoolBy] = {**task_type.labellings(), "all": lambda _: "all"}
        key = task_type.spec.breakdown_key
        if key is not None:
            def value(record: PredictionRecord) -> str:
                found = (record.get("meta") or {}).get(key)
                return NO_VALUE if found is None or found == "" else str(found)
            labels["breakdown"] = value
        self.grouped = task_type.builder(labels)
        self.usage = UsageTally()
        self.references = (ReferenceTally(task_type)
                           if trivial and task_type.has_trivial_baseline else None)

    def add(self, record: PredictionRecord) -> None:
        self.grouped.add(record)
        self.usage.add(record)
        if self.references is not None:
            self.references.add(record)

    @cached_property
    def items(self) -> Grouped | Counted:
        """The grouping of the records taken (built once, after the last)."""
        return self.grouped.build()

    def trivial_score(self, metric: str) -> float | None:
        """The type's trivial baseline on ``metric`` over the task's items, from the
        references kept (None when it keeps none)."""
        return None if self.references is None else self.references.trivial_score(metric)

    def scores(self, manifest: Manifest, name: str, wall_s: float | None,
               hosting: float | None) -> TaskScores:
        """The task's entry of ``scores.json``."""
        task_type, spec = self.task_type, self.task_type.spec
        resampling = Resampling.of(manifest)
        grouped = self.items
        breakdown = None
        if spec.breakdown_by is not None:
            # no reference "variety" among the values: rows of different items are not paired
            values = task_type.score_grouped(grouped.view("breakdown"), "", resampling)
            breakdown = Breakdown(by=spec.breakdown_by, values=dict(sorted(values.items())))
        pooled = task_type.score_grouped(grouped.view("all"), "all", resampling)
        reference = manifest.reference_variety(name)
        return TaskScores(
            signature=str(Signature.of(manifest, name)),
            type=spec.type,
            metrics=task_type.selected_metrics(),
            metric_signatures=task_type.metric_signatures(),
            reference_variety=reference,
            varieties=task_type.score_grouped(grouped, reference, resampling),
            overall=pooled.get("all", VarietyScore(n=0)),
            usage=self.usage.summary(manifest, wall_s, hosting),
            details=task_type.task_details(grouped, resampling),
            breakdown=breakdown,
        )


def trivial_baselines(run: Run, metrics: Mapping[str, str]) -> dict[str, float | None]:
    """The trivial baseline of each task named in ``metrics`` on its metric, from the
    run's predictions (what :func:`compute_scores` works out when asked, for a run that
    did not)."""
    tally = RunTally(run.manifest, trivial=True)
    for record in run.predictions():
        tally.add(record)
    return {task: tally.tasks[task].trivial_score(metric) for task, metric in metrics.items()
            if task in tally.tasks}


class ReferenceTally:
    """Each item's reference, counted (nothing kept per record past a few thousand), for
    a task type's trivial baseline (see :meth:`TaskType.trivial_score`): a record that
    replaces an earlier one of its item replaces its reference."""

    def __init__(self, task_type: TaskType):
        self.task_type = task_type
        self._builder = CountedBuilder([], {_REFERENCE: _reference_key})

    def add(self, record: PredictionRecord) -> None:
        self._builder.add(record)

    def trivial_score(self, metric: str) -> float | None:
        """The trivial baseline on ``metric`` over the items taken."""
        return self.task_type.trivial_score(self.references, metric)

    @cached_property
    def references(self) -> list[tuple[JSONValue, int]]:
        """Each distinct reference of the items taken, in the order first taken, and how
        many items hold it."""
        counted = self._builder.build().view(_REFERENCE)
        return [(key[1:] if key[0] == "s" else json.loads(key[1:]), counted.rows(key).n)
                for key in counted.varieties]


#: The labelling each record's reference is counted under, for a trivial baseline.
_REFERENCE = "\0reference"


def _reference_key(record: PredictionRecord) -> str:
    """The record's reference as a labelling's value: a string as itself, anything else as
    JSON (a letter tells which)."""
    reference = record.get("reference")
    if isinstance(reference, str):
        return "s" + reference
    return "j" + json.dumps(reference, ensure_ascii=False, sort_keys=True)


def _reads_back_as_is(record: PredictionRecord) -> bool:
    """Whether what scoring reads of ``record`` is plain JSON: str, int, bool, None,
    floats other than NaN (a NaN read back is another object), and lists and dicts with
    string keys of those (no tuples, no subclasses)."""
    for key, value in record.items():
        if type(value) not in _PLAIN_SCALARS and key not in _NOT_SCORED and not _plain(value):
            return False
    return _plain((record.get("fields") or {}).get("duration_s"))


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: object) -> bool:
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return True
    if kind is float:
        return value == value  # not NaN
    if kind is list:
        return all(_plain(v) for v in value)  # type: ignore[attr-defined]
    if kind is dict:
        return all(type(k) is str and _plain(v)
                   for k, v in value.items())  # type: ignore[attr-defined]
    return False


def compute_scores(manifest: Manifest, records: Iterable[PredictionRecord] | RunTally,
                   wall_s: float | None = None, *,
                   trivial: dict[str, float | None] | None = None) -> RunScores:
    """Everything in ``scores.json`` from a manifest and its prediction records (or the
    tally a run kept of them). With ``trivial``, also the trivial baseline on its headline
    metric (what ``run`` prints beside the scores; see :meth:`TaskType.trivial_score`) of
    each task, so that nothing has to read the predictions again for it."""
    if isinstance(records, RunTally):
        tally = records
    else:
        tally = RunTally(manifest, trivial=trivial is not None)
        for record in records:
            tally.add(record)
    hosting = tally.measured_hosting_per_request(wall_s)
    scores: dict[str, TaskScores] = {}
    for name, task in tally.tasks.items():
        scores[name] = task.scores(manifest, name, wall_s, hosting)
        if trivial is not None:
            trivial[name] = task.trivial_score(scores[name].metrics[0])
    return RunScores(run_id=manifest.run_id, model=manifest.model.spec.name,
                     suite=manifest.suite.ident, tasks=scores)


#: Record keys no task type scores (the raw answer was parsed when the record was made).
_NOT_SCORED = frozenset({"id", "fields", "request_hash", "attempts", "split", "output"})


class UsageTally:
    """Latency, tokens and cost of a task's records as sums and counts (each sum adds the
    same values in the same order as a sum over all the records would), and the latencies
    themselves, for their mean and percentiles (a :class:`FloatColumn`: on disk past a few
    thousand)."""

    def __init__(self) -> None:
        self.latencies = FloatColumn()
        self.n_requests = self.n = self.live = self.n_errors = self.n_skipped = 0
        self.n_cached = self.tokens_in = self.tokens_out = 0
        self.cost: float = 0
        self.audio_s: float = 0
        self.busy_ms: float = 0

    def add(self, record: PredictionRecord) -> None:
        self.n_requests += 1
        cached = record.get("cached")
        if cached:
            self.n_cached += 1
        if record.get("skipped"):
            self.n_skipped += 1
            return
        if record.get("error"):
            self.n_errors += 1
            return
        self.n += 1  # answered
        if not cached:
            self.live += 1
        if (latency := record.get("latency_ms")) is not None:
            self.latencies.append(latency)
            self.busy_ms += latency
        self.cost += record.get("cost") or 0.0
        self.audio_s += float(str((record.get("fields") or {}).get("duration_s") or 0))
        self.tokens_in += record.get("input_tokens") or 0
        self.tokens_out += record.get("output_tokens") or 0

    def summary(self, manifest: Manifest, wall_s: float | None,
                hosting_per_request: float | None = None) -> Usage:
        """Latency, tokens, throughput and cost per 1,000 requests (MAD and USD).

        Hosting is ``hosting_per_request`` (measured on the run's wall time) for each live
        answer; without a measurement (a fully cached re-run) it is estimated from the
        latency as if the server were kept busy at the model's concurrency."""
        spec = manifest.model.spec
        pricing, usd_mad, n, live = spec.pricing, manifest.usd_mad, self.n, self.live
        stats = latency_stats(self.latencies)
        if hosting_per_request is not None:
            hosting_cost = hosting_per_request * live
        else:
            hosting_cost = n * pricing.hosting_cost_per_request(
                (stats["mean_ms"] or 0.0) / 1000, spec.limits.nominal)
        per_1k = (self.cost + hosting_cost) / n * 1000 if n else None
        audio_s, busy_s = self.audio_s, self.busy_ms / 1000
        return Usage(
            audio_s=round(audio_s, 3) if audio_s else None,
            rtfx=round(audio_s / busy_s, 3) if audio_s and busy_s else None,
            n_requests=self.n_requests,
            n_answered=n,
            n_errors=self.n_errors,
            n_skipped=self.n_skipped,
            n_cached=self.n_cached,
            **stats,
            # live answers only: a cached answer took no time now (and kept its old latency)
            throughput_per_s=round(live / wall_s, 3) if wall_s and live else None,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            cost_total=round(self.cost + hosting_cost, 6),
            currency=pricing.currency,
            cost_per_1k={cur: (round(convert(per_1k, pricing.currency, cur, usd_mad), 6)
                               if per_1k is not None else None) for cur in ("MAD", "USD")},
            usd_mad=usd_mad,
        )


def rescore(run: Run) -> RunScores:
    """Recompute parsed answers and scores from stored raw outputs; no model is called.
    Rewrites ``predictions.jsonl`` and ``scores.json`` atomically, a record at a time (the
    new file is written beside the old one and replaces it only once every record is
    scored)."""
    tally = RunTally(run.manifest)
    with atomic_path(run.path / PREDICTIONS) as new, new.open("w", encoding="utf-8") as fh:
        for record in reparse(run.manifest, run.predictions()):
            line = json_line(record)
            tally.add(record, line)
            fh.write(line + "\n")
        scores = compute_scores(run.manifest, tally, run.manifest.wall_s)
        for task, claimed in run.scores.tasks.items():
            entry = scores.tasks.get(task)
            held = entry.overall.n if entry is not None else 0
            if held < claimed.overall.n:  # rewriting would lose the scores of the rest
                raise RunError(f"{run.path}: {task}: {PREDICTIONS} holds {held} of the "
                               f"{claimed.overall.n} items {SCORES} counts: records were lost "
                               "(a truncated or replaced file); restore it from a copy")
    write_json(run.path / SCORES, scores.to_json())
    return scores
