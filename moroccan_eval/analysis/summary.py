"""Per-model summaries of finished runs and Pareto fronts.

Nothing here renders HTML; the report and the ``recommend`` command read the same
:class:`ModelSummary` objects (the recommendation lives in :mod:`.recommendation`).

*Quality* is a task's primary metric oriented so that larger is better: for a metric where
smaller is better (error or attack-success rates) quality is ``1 - value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .. import tasks, varieties
from ..adapters.base import ModelInfo
from ..costing import Currency
from ..errors import ConfigError, did_you_mean
from ..records import Delta, MetricScore, TaskScores, Usage, VarietyScore
from ..runs.rundir import Run
from ..runs.scoring import compute_scores, reparse
from ..tasks.base import TaskType

# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Score:
    """One metric value with its 95% CI, and its paired delta to the reference variety."""

    value: float | None
    ci: tuple[float, float] | None
    n: int
    delta: float | None = None
    delta_ci: tuple[float, float] | None = None
    significant: bool = False

    @classmethod
    def from_entry(cls, entry: VarietyScore, metric: str) -> Score:
        score = entry.metrics.get(metric) or MetricScore(value=None, ci=None)
        delta = entry.deltas.get(metric) or Delta(value=None, ci=None, n_pairs=0,
                                                  significant=False)
        return cls(
            value=score.value, ci=score.ci,
            n=entry.n if score.n is None else score.n,  # rates: the items they count
            delta=delta.value, delta_ci=delta.ci, significant=delta.significant,
        )


@dataclass
class TaskSummary:
    """One model's scores on one task of one suite."""

    suite: str
    task: str
    type: str
    metric: str
    metrics: list[str]
    higher_is_better: bool
    reference: str
    overall: Score
    varieties: dict[str, Score]
    all_metrics: dict[str, dict[str, Score]]
    usage: Usage
    signature: str
    run: Run
    scores: TaskScores
    task_type: TaskType

    @property
    def key(self) -> tuple[str, str]:
        return (self.suite, self.task)

    def quality(self, score: Score, strict: bool = False) -> float | None:
        """The score oriented so that larger is better; the pessimistic CI bound if strict."""
        if score.value is None:
            return None
        if strict and score.ci is not None:
            value = score.ci[0] if self.higher_is_better else score.ci[1]
        else:
            value = score.value
        return value if self.higher_is_better else 1.0 - value


@dataclass
class ModelSummary:
    """Everything the report and the recommendation need about one model."""

    name: str
    info: ModelInfo
    tasks: list[TaskSummary] = field(default_factory=list)

    @property
    def parameters_b(self) -> float | None:
        return self.info.parameters_b

    def quality(self, strict: bool = False) -> float | None:
        """Mean overall quality over the model's tasks."""
        values = [t.quality(t.overall, strict) for t in self.tasks]
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known and len(known) == len(values) else None

    def cost_per_1k(self, currency: Currency = "MAD") -> float | None:
        """Cost of 1,000 requests, averaged over tasks weighted by answered requests."""
        total, weight = 0.0, 0
        for task in self.tasks:
            cost = task.usage.cost_per_1k[currency]
            if cost is None:
                return None
            total += cost * task.usage.n_answered
            weight += task.usage.n_answered
        return total / weight if weight else None

    def latency(self, key: str = "p95_ms") -> float | None:
        """The worst latency percentile over the model's tasks."""
        values = [getattr(t.usage, key) for t in self.tasks]
        known = [v for v in values if v is not None]
        return max(known) if known and len(known) == len(values) else None


def summarize(runs: Iterable[Run], reference: str | None = None) -> list[ModelSummary]:
    """Group runs by model name. With ``reference``, deltas are recomputed from the stored
    predictions against that variety instead of each suite's own reference."""
    if reference is not None and reference not in varieties.registry():
        raise ConfigError(f"--reference: unknown variety '{reference}'"
                          + did_you_mean(reference, varieties.registry()))
    models: dict[str, ModelSummary] = {}
    for run in runs:
        spec = run.manifest.model.spec
        model = models.setdefault(spec.name, ModelSummary(spec.name, spec.info))
        scores = run.scores
        if reference is not None and reference != run.manifest.suite.reference_variety:
            suite = run.manifest.suite.model_copy(update={"reference_variety": reference})
            manifest = run.manifest.model_copy(update={"suite": suite})
            scores = compute_scores(manifest, reparse(manifest, run.predictions()),
                                    run.manifest.wall_s)
        for task, entry in scores.tasks.items():
            model.tasks.append(_task_summary(run, task, entry))
    return list(models.values())


def _task_summary(run: Run, task: str, entry: TaskScores) -> TaskSummary:
    task_type = tasks.for_spec(run.manifest.tasks[task].spec)
    metric = entry.metrics[0]
    return TaskSummary(
        suite=run.manifest.suite.ident, task=task, type=entry.type,
        metric=metric, metrics=list(entry.metrics),
        higher_is_better=task_type.higher_is_better(metric),
        reference=entry.reference_variety,
        overall=Score.from_entry(entry.overall, metric),
        varieties={code: Score.from_entry(v, metric) for code, v in entry.varieties.items()},
        all_metrics={m: {code: Score.from_entry(v, m) for code, v in entry.all_varieties()}
                     for m in entry.metrics},
        usage=entry.usage, signature=entry.signature, run=run, scores=entry,
        task_type=task_type,
    )


def tasks_differ(models: Sequence[ModelSummary]) -> bool:
    """Whether the models were not all run on the same (suite, task) pairs: their quality,
    cost and recommendation then average over different tasks."""
    return len({frozenset(t.key for t in m.tasks) for m in models}) > 1


# --------------------------------------------------------------------------- Pareto


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the points no other point dominates, where ``x`` (cost, latency) is to be
    minimised and ``y`` (quality) maximised.

    One sweep in ``x`` order (a leaderboard plots a thousand points): a point is dominated
    when a point of smaller ``x`` has at least its ``y``, or a point of the same ``x`` a
    larger ``y``; equal points do not dominate each other."""
    front: set[int] = set()
    order = sorted(range(len(points)), key=lambda i: points[i][0])
    best = float("-inf")  # the largest y among points of smaller x
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and points[order[end]][0] == points[order[start]][0]:
            end += 1
        group = order[start:end]
        top = max(points[i][1] for i in group)
        front |= {i for i in group if points[i][1] > best and points[i][1] == top}
        best = max(best, top)
        start = end
    return front
