"""Analysis of finished runs: per-model summaries, Pareto fronts and paired comparison
of two runs.

Nothing here renders HTML; the report and the ``recommend`` and ``compare`` commands all
read the same :class:`ModelSummary` objects (the recommendation lives in
:mod:`moroccan_eval.recommendation`).

*Quality* is a task's primary metric oriented so that larger is better: for a metric where
smaller is better (error or attack-success rates) quality is ``1 - value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import varieties
from .costing import Currency
from .errors import ConfigError, RunError, did_you_mean
from .results import Run, compute_scores, relabel, reparse
from .scoring import HIGHER_IS_BETTER, scorer_for, stable_id

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
    def from_entry(cls, entry: dict[str, Any], metric: str) -> Score:
        score = entry.get(metric) or {}
        delta = (entry.get("delta_vs_reference") or {}).get(metric) or {}
        return cls(
            value=score.get("value"), ci=_pair(score.get("ci")),
            n=int(score.get("n", entry.get("n", 0))),  # rates: the items they count
            delta=delta.get("value"), delta_ci=_pair(delta.get("ci")),
            significant=bool(delta.get("significant")),
        )


def _pair(values: Sequence[float] | None) -> tuple[float, float] | None:
    return (float(values[0]), float(values[1])) if values else None


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
    usage: dict[str, Any]
    signature: str
    run: Run

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
    info: dict[str, Any]
    tasks: list[TaskSummary] = field(default_factory=list)

    @property
    def parameters_b(self) -> float | None:
        value = self.info.get("parameters_b")
        return float(value) if value is not None else None

    def quality(self, strict: bool = False) -> float | None:
        """Mean overall quality over the model's tasks."""
        values = [t.quality(t.overall, strict) for t in self.tasks]
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known and len(known) == len(values) else None

    def cost_per_1k(self, currency: Currency = "MAD") -> float | None:
        """Cost of 1,000 requests, averaged over tasks weighted by answered requests."""
        total, weight = 0.0, 0
        for task in self.tasks:
            cost = task.usage["cost_per_1k"][currency]
            if cost is None:
                return None
            total += cost * task.usage["n_answered"]
            weight += task.usage["n_answered"]
        return total / weight if weight else None

    def latency(self, key: str = "p95_ms") -> float | None:
        """The worst latency percentile over the model's tasks."""
        values = [t.usage.get(key) for t in self.tasks]
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
        spec = run.manifest["model"]["spec"]
        model = models.setdefault(spec["name"], ModelSummary(spec["name"], spec.get("info") or {}))
        scores = run.scores
        if reference is not None and reference != run.manifest["suite"]["reference_variety"]:
            manifest = {**run.manifest,
                        "suite": {**run.manifest["suite"], "reference_variety": reference}}
            scores = compute_scores(manifest, reparse(manifest, run.predictions()),
                                    run.manifest.get("wall_s"))
        for task, entry in scores["tasks"].items():
            metric = entry["metrics"][0]
            model.tasks.append(TaskSummary(
                suite=run.manifest["suite"]["ident"], task=task, type=entry["type"],
                metric=metric, metrics=list(entry["metrics"]),
                higher_is_better=HIGHER_IS_BETTER.get(metric, True),
                reference=entry["reference_variety"],
                overall=Score.from_entry(entry["overall"], metric),
                varieties={code: Score.from_entry(v, metric)
                           for code, v in entry["varieties"].items()},
                all_metrics={m: {code: Score.from_entry(v, m)
                                 for code, v in {**entry["varieties"],
                                                 "all": entry["overall"]}.items()}
                             for m in entry["metrics"]},
                usage=entry["usage"], signature=entry["signature"], run=run,
            ))
    return list(models.values())


# --------------------------------------------------------------------------- Pareto


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the points no other point dominates, where ``x`` (cost, latency) is to be
    minimised and ``y`` (quality) maximised."""
    front = set()
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.add(i)
    return front


# --------------------------------------------------------------------------- comparison


@dataclass
class Difference:
    task: str
    variety: str
    metric: str
    n_pairs: int
    a: float | None
    b: float | None
    delta: float | None
    ci: tuple[float, float] | None
    significant: bool
    higher_is_better: bool = True


def compare_runs(run_a: Run, run_b: Run) -> list[Difference]:
    """B − A per task × variety × metric over the items both runs answered, with a paired
    bootstrap CI (items resampled once, both runs scored on the same resample). Every task
    type is compared with its own scorer: the two runs become two "varieties" of the same
    items, A the reference."""
    if run_a.manifest["suite"]["name"] != run_b.manifest["suite"]["name"]:
        raise RunError(f"cannot compare runs of different suites: "
                       f"{run_a.manifest['suite']['ident']} and {run_b.manifest['suite']['ident']}")
    records_b = {(r["task"], r["id"]): r for r in reparse(run_b.manifest, run_b.predictions())}
    paired: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for rec_a in reparse(run_a.manifest, run_a.predictions()):
        rec_b = records_b.get((rec_a["task"], rec_a["id"]))
        if rec_b is None or rec_a.get("skipped") or rec_b.get("skipped") or \
                rec_a["task"] not in run_b.manifest["tasks"]:
            continue
        paired.setdefault(rec_a["task"], []).append((rec_a, rec_b))
    seed, n_boot = run_a.manifest["seed"], run_a.manifest["bootstrap"]
    order = list(varieties.registry())
    out = []
    for task, pairs in sorted(paired.items()):
        spec = run_a.manifest["tasks"][task]["spec"]
        score = scorer_for(spec)
        present = sorted({a["variety"] for a, _ in pairs},
                         key=lambda c: order.index(c) if c in order else len(order))
        for variety in [*present, "all"]:
            subset = [p for p in pairs if variety in ("all", p[0]["variety"])]
            records = relabel([a for a, _ in subset], lambda _: "A") + \
                relabel([b for _, b in subset], lambda _: "B")
            scored = score(records, spec["metrics"], "A", n_boot=n_boot,
                           seed=seed + stable_id(variety) % 1000)
            for metric in spec["metrics"]:
                delta = (scored["B"].get("delta_vs_reference") or {}).get(metric) or {}
                out.append(Difference(  # B − A
                    task=task, variety=variety, metric=metric, n_pairs=len(subset),
                    a=(scored["A"].get(metric) or {}).get("value"),
                    b=(scored["B"].get(metric) or {}).get("value"),
                    delta=delta.get("value"), ci=_pair(delta.get("ci")),
                    significant=bool(delta.get("significant")),
                    higher_is_better=HIGHER_IS_BETTER.get(metric, True)))
    if not out:
        raise RunError("the two runs share no scored item; compare runs of the same suite "
                       "and split")
    return out
