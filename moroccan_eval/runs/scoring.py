"""Scoring a run: each record's judgements from its raw output, then ``scores.json``.

Every number comes from the task's type (:mod:`moroccan_eval.tasks`) through the one
bootstrap engine; this module only groups records by task and adds usage (latency,
tokens, cost).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import cast

from .. import tasks
from ..costing import convert, latency_stats
from ..io import write_json, write_jsonl
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


#: Records of a task up to which :func:`compute_scores` works out its trivial baseline
#: (which holds a small dict per record beside the scored parts: about 70 MB at this size;
#: a larger task's is worked out after scoring, once the parts are freed).
TRIVIAL_WITH_SCORES = 200_000


class ScoredParts:
    """What scoring reads of a run's records (:func:`_scored_part`), kept while the run
    writes them, so that scoring need not read ``predictions.jsonl`` back. Each part is
    taken from the record itself when every value it keeps is plain JSON (and so reads
    back from the file as it is), else from the record's JSON line, parsed: the scores
    are those of the file either way."""

    def __init__(self) -> None:
        self.by_task: dict[str, list[PredictionRecord]] = defaultdict(list)
        self.shared: dict[str, str] = {}

    def add(self, record: PredictionRecord, line: str) -> None:
        """Keep the part of ``record``, written to the predictions as ``line``."""
        read = record if _reads_back_as_is(record) else cast(PredictionRecord,
                                                             json.loads(line))
        self.by_task[read["task"]].append(_scored_part(read, self.shared))


def _reads_back_as_is(record: PredictionRecord) -> bool:
    """Whether what :func:`_scored_part` keeps of ``record`` is plain JSON: str, int,
    bool, None, floats other than NaN (a NaN read back is another object), and lists and
    dicts with string keys of those (no tuples, no subclasses)."""
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


def compute_scores(manifest: Manifest, records: Iterable[PredictionRecord] | ScoredParts,
                   wall_s: float | None = None, *,
                   trivial: dict[str, float | None] | None = None) -> RunScores:
    """Everything in ``scores.json`` from a manifest and its prediction records (or their
    parts kept by a run). With ``trivial``, also the trivial baseline on its headline
    metric (what ``run`` prints beside the scores; see :meth:`TaskType.trivial_score`) of
    each task of at most :data:`TRIVIAL_WITH_SCORES` records, so that nothing has to read
    their predictions again for it."""
    if isinstance(records, ScoredParts):
        by_task = records.by_task
    else:
        by_task = defaultdict(list)
        shared: dict[str, str] = {}
        for record in records:
            by_task[record["task"]].append(_scored_part(record, shared))
    hosting = measured_hosting_per_request(manifest, by_task.values(), wall_s)
    seed, n_boot = manifest.seed, manifest.bootstrap
    scores: dict[str, TaskScores] = {}
    for name, info in manifest.tasks.items():
        task_type = tasks.for_spec(info.spec)
        task_records = by_task.get(name, [])
        reference = manifest.reference_variety(name)
        pooled = task_type.score(task_records, "all", n_boot=n_boot, seed=seed,
                                 pool_by=lambda _: "all")
        scores[name] = TaskScores(
            signature=str(Signature.of(manifest, name)),
            type=info.spec.type,
            metrics=task_type.selected_metrics(),
            metric_signatures=task_type.metric_signatures(),
            reference_variety=reference,
            varieties=task_type.score(task_records, reference, n_boot=n_boot, seed=seed),
            overall=pooled.get("all", VarietyScore(n=0)),
            usage=usage_summary(task_records, manifest, wall_s, hosting),
            details=task_type.task_details(task_records, n_boot=n_boot, seed=seed),
            breakdown=breakdown_scores(task_type, task_records, n_boot=n_boot, seed=seed),
        )
        if trivial is not None and len(task_records) <= TRIVIAL_WITH_SCORES:
            trivial[name] = task_type.trivial_score(
                [_item_part(r) for r in task_records], scores[name].metrics[0])
    return RunScores(run_id=manifest.run_id, model=manifest.model.spec.name,
                     suite=manifest.suite.ident, tasks=scores)


def _item_part(record: PredictionRecord) -> PredictionRecord:
    """:func:`~moroccan_eval.records.item_part` of a scored part (which has no ``id``)."""
    return cast(PredictionRecord, {"group": record["group"], "task": record["task"],
                                   "variety": record["variety"],
                                   "reference": record.get("reference")})


def _scored_part(record: PredictionRecord, shared: dict[str, str]) -> PredictionRecord:
    """What scoring reads of a record, kept small (a million records are scored at once):
    no input text, raw answer or id (an audio item keeps its duration, for the real-time
    factor), no key whose value is None and no zero or false count or flag (every reader
    uses ``.get`` and reads those as true or false); one string object for each repeated
    value (task, variety, group, label) and key; and a :class:`_Slim` pair of tuples
    instead of a dict (with all that, 225 bytes a record instead of 1,768)."""
    keys: list[str] = []
    values: list[object] = []
    for key, value in record.items():
        if value is None or key in _NOT_SCORED or (not value and key in _READ_AS_FLAGS):
            continue
        if key in _REPEATED and isinstance(value, str) and len(value) <= 64:
            value = shared.setdefault(value, value)
        keys.append(key)
        values.append(value)
    duration = (record.get("fields") or {}).get("duration_s")
    if duration is not None:
        keys.append("fields")
        values.append({"duration_s": duration})
    shape = tuple(keys)
    # one key index per shape of record: json.loads makes new key strings for every line
    index = _SHAPES.get(shape)
    if index is None:
        index = _SHAPES[shape] = {key: i for i, key in enumerate(shape)}
    return cast(PredictionRecord, _Slim(index, tuple(values)))


_SHAPES: dict[tuple[str, ...], dict[str, int]] = {}


class _Slim(Mapping[str, object]):
    """A read-only record: its keys (the position of each in ``values``, a dict shared by
    every record of the same shape) and its values. Reads as a dict does (``get``, ``[]``,
    ``in``, ``{**record}``)."""

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: dict[str, int], values: tuple[object, ...]):
        self._keys = keys
        self._values = values

    def __getitem__(self, key: str) -> object:
        return self._values[self._keys[key]]

    def get(self, key: str, default: object = None) -> object:
        # most reads ask for a key the record leaves out (error, skipped, cached ...)
        position = self._keys.get(key)
        return default if position is None else self._values[position]

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


#: Record keys no task type scores (the raw answer was parsed when the record was made).
_NOT_SCORED = frozenset({"id", "fields", "request_hash", "attempts", "split", "output"})
#: Keys every reader treats as true or false (a zero cost adds nothing): left out when false.
_READ_AS_FLAGS = frozenset({"cost", "input_tokens", "output_tokens", "cached", "skipped",
                            "error", "tool_calls"})
#: Keys whose short values repeat across records (labels, group ids shared by varieties).
_REPEATED = frozenset({"task", "variety", "group", "reference", "parsed"})


def measured_hosting_per_request(manifest: Manifest,
                                 records_by_task: Iterable[list[PredictionRecord]],
                                 wall_s: float | None) -> float | None:
    """A self-hosted model's ``hosting_per_hour`` over the run's measured wall time, shared
    by the requests it answered live; ``None`` when there is nothing measured to share
    (no hosting price, no wall time, or every answer came from the cache)."""
    rate = manifest.model.spec.pricing.hosting_per_hour
    if not rate or not wall_s:
        return None
    live = sum(1 for records in records_by_task for r in records
               if not r.get("error") and not r.get("skipped") and not r.get("cached"))
    if not live:
        return None
    return rate * wall_s / 3600.0 / live


#: The breakdown row of records whose item has no value for the breakdown's meta key.
NO_VALUE = "(none)"


def breakdown_scores(task_type: TaskType, records: Sequence[PredictionRecord], *,
                     n_boot: int, seed: int) -> Breakdown | None:
    """The task's scores per value of its ``breakdown_by`` meta field, all varieties pooled
    (each item resampled on its own, as for ``overall``); ``None`` when it sets none."""
    by, key = task_type.spec.breakdown_by, task_type.spec.breakdown_key
    if by is None or key is None:
        return None

    def value(record: PredictionRecord) -> str:
        found = (record.get("meta") or {}).get(key)
        return NO_VALUE if found is None or found == "" else str(found)

    # no reference "variety" among the values: rows of different items have no paired delta
    values = task_type.score(records, "", n_boot=n_boot, seed=seed, pool_by=value)
    return Breakdown(by=by, values=dict(sorted(values.items())))


def usage_summary(records: list[PredictionRecord], manifest: Manifest,
                  wall_s: float | None, hosting_per_request: float | None = None) -> Usage:
    """Latency, tokens, throughput and cost per 1,000 requests (MAD and USD).

    Hosting is ``hosting_per_request`` (measured on the run's wall time) for each live
    answer; without a measurement (a fully cached re-run) it is estimated from the latency
    as if the server were kept busy at the model's concurrency."""
    spec = manifest.model.spec
    pricing, usd_mad = spec.pricing, manifest.usd_mad
    # one pass (a million records): each sum below adds the same values in the same order
    latencies: list[float] = []
    costs: list[float] = []
    durations: list[float] = []
    tokens_in: list[int] = []
    tokens_out: list[int] = []
    n = live = n_errors = n_skipped = n_cached = 0
    for record in records:
        cached = record.get("cached")
        if cached:
            n_cached += 1
        if record.get("skipped"):
            n_skipped += 1
            continue
        if record.get("error"):
            n_errors += 1
            continue
        n += 1  # answered
        if not cached:
            live += 1
        if (latency := record.get("latency_ms")) is not None:
            latencies.append(latency)
        costs.append(record.get("cost") or 0.0)
        durations.append(float(str((record.get("fields") or {}).get("duration_s") or 0)))
        tokens_in.append(record.get("input_tokens") or 0)
        tokens_out.append(record.get("output_tokens") or 0)
    stats = latency_stats(latencies)
    token_cost = sum(costs)
    if hosting_per_request is not None:
        hosting_cost = hosting_per_request * live
    else:
        hosting_cost = n * pricing.hosting_cost_per_request((stats["mean_ms"] or 0.0) / 1000,
                                                            spec.limits.nominal)
    per_1k = (token_cost + hosting_cost) / n * 1000 if n else None
    audio_s = sum(durations)
    busy_s = sum(latencies) / 1000
    return Usage(
        audio_s=round(audio_s, 3) if audio_s else None,
        rtfx=round(audio_s / busy_s, 3) if audio_s and busy_s else None,
        n_requests=len(records),
        n_answered=n,
        n_errors=n_errors,
        n_skipped=n_skipped,
        n_cached=n_cached,
        **stats,
        # live answers only: a cached answer took no time now (and kept its old latency)
        throughput_per_s=round(live / wall_s, 3) if wall_s and live else None,
        tokens_in=sum(tokens_in),
        tokens_out=sum(tokens_out),
        cost_total=round(token_cost + hosting_cost, 6),
        currency=pricing.currency,
        cost_per_1k={cur: (round(convert(per_1k, pricing.currency, cur, usd_mad), 6)
                           if per_1k is not None else None) for cur in ("MAD", "USD")},
        usd_mad=usd_mad,
    )


def rescore(run: Run) -> RunScores:
    """Recompute parsed answers and scores from stored raw outputs; no model is called.
    Rewrites ``predictions.jsonl`` and ``scores.json`` atomically."""
    records = list(reparse(run.manifest, run.predictions()))
    scores = compute_scores(run.manifest, records, run.manifest.wall_s)
    write_jsonl(run.path / PREDICTIONS, records)
    write_json(run.path / SCORES, scores.to_json())
    return scores
