"""Decision logic over finished runs: per-model summaries, Pareto fronts, the
recommendation, and paired comparison of two runs.

Nothing here renders HTML; the report, ``recommend`` and ``compare`` commands all read the
same :class:`ModelSummary` objects, so the report's recommendation block and the command's
answer cannot disagree.

*Quality* is a task's primary metric oriented so that larger is better: for a metric where
smaller is better (error or attack-success rates) quality is ``1 - value``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import varieties
from .costing import Currency
from .errors import ConfigError, RunError, did_you_mean
from .results import Run, compute_scores, reparse
from .scoring import HIGHER_IS_BETTER, MISSING, metric_with_ci, paired_delta, stable_id

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
            value=score.get("value"), ci=_pair(score.get("ci")), n=int(entry.get("n", 0)),
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


# --------------------------------------------------------------------------- recommendation


class Constraints(BaseModel):
    """What a model must meet to be recommended. Scores are fractions in [0, 1]."""

    model_config = ConfigDict(extra="forbid")
    min_score: float | None = Field(default=None, ge=0, le=1)
    min_variety: dict[str, float] = Field(default_factory=dict)
    max_p95_ms: float | None = Field(default=None, gt=0)
    max_cost_per_1k: float | None = Field(default=None, ge=0)
    currency: Currency = "MAD"
    strict: bool = False

    def describe(self) -> list[str]:
        """The constraints as short human-readable lines."""
        lines = []
        if self.min_score is not None:
            lines.append(f"score ≥ {100 * self.min_score:.1f}% on every task")
        lines += [f"{code} ≥ {100 * v:.1f}%" for code, v in self.min_variety.items()]
        if self.max_p95_ms is not None:
            lines.append(f"p95 latency ≤ {self.max_p95_ms:g} ms")
        if self.max_cost_per_1k is not None:
            lines.append(f"cost ≤ {self.max_cost_per_1k:g} {self.currency} per 1,000 requests")
        if self.strict:
            lines.append("scores judged by their 95% CI lower bound")
        return lines


@dataclass
class Verdict:
    """Whether one model meets the constraints, and the first one it fails."""

    model: ModelSummary
    failure: str | None
    quality: float | None
    cost_per_1k: float | None
    p95_ms: float | None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def to_dict(self, currency: str) -> dict[str, Any]:
        return {
            "model": self.model.name, "passed": self.passed, "failed": self.failure,
            "quality": self.quality, "cost_per_1k": self.cost_per_1k, "currency": currency,
            "p95_ms": self.p95_ms, "parameters_b": self.model.parameters_b,
        }


@dataclass
class Recommendation:
    constraints: Constraints
    verdicts: list[Verdict]

    @property
    def chosen(self) -> Verdict | None:
        return next((v for v in self.verdicts if v.passed), None)

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "recommended": chosen.model.name if chosen else None,
            "constraints": self.constraints.model_dump(),
            "models": [v.to_dict(self.constraints.currency) for v in self.verdicts],
        }


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _first_failure(model: ModelSummary, c: Constraints) -> str | None:
    bound = "CI lower bound " if c.strict else ""
    if c.min_score is not None:
        for task in model.tasks:
            quality = task.quality(task.overall, c.strict)
            if quality is None or quality < c.min_score:
                shown = "no score" if quality is None else _pct(quality)
                return f"{task.task}: {bound}{shown} < {_pct(c.min_score)}"
    for code, minimum in c.min_variety.items():
        scored = [(t, t.varieties[code]) for t in model.tasks if code in t.varieties]
        if not scored:
            return f"{code}: not evaluated"
        for task, score in scored:
            quality = task.quality(score, c.strict)
            if quality is None or quality < minimum:
                shown = "no score" if quality is None else _pct(quality)
                return f"{task.task} · {code}: {bound}{shown} < {_pct(minimum)}"
    if c.max_p95_ms is not None:
        p95 = model.latency("p95_ms")
        if p95 is None or p95 > c.max_p95_ms:
            shown = "unknown" if p95 is None else f"{p95:,.0f} ms"
            return f"p95 latency {shown} > {c.max_p95_ms:g} ms"
    if c.max_cost_per_1k is not None:
        cost = model.cost_per_1k(c.currency)
        if cost is None or cost > c.max_cost_per_1k:
            shown = "unknown" if cost is None else f"{cost:.4g} {c.currency}"
            return f"cost per 1k {shown} > {c.max_cost_per_1k:g} {c.currency}"
    return None


def recommend(models: Sequence[ModelSummary], constraints: Constraints) -> Recommendation:
    """The cheapest model meeting every constraint, then the smallest, then the best; every
    other model with the first constraint it fails. Unknown varieties are refused."""
    known = varieties.registry()
    unknown = [c for c in constraints.min_variety if c not in known]
    if unknown:
        raise ConfigError("--min-variety: unknown variet(ies)", [
            f"'{code}'{did_you_mean(code, known)}" for code in unknown])
    verdicts = [
        Verdict(model=m, failure=_first_failure(m, constraints),
                quality=m.quality(constraints.strict),
                cost_per_1k=m.cost_per_1k(constraints.currency), p95_ms=m.latency("p95_ms"))
        for m in models
    ]

    def order(v: Verdict) -> tuple[bool, float, float, float]:
        return (not v.passed,
                math.inf if v.cost_per_1k is None else v.cost_per_1k,
                math.inf if v.model.parameters_b is None else v.model.parameters_b,
                -(v.quality or 0.0))

    return Recommendation(constraints, sorted(verdicts, key=order))


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


def compare_runs(run_a: Run, run_b: Run) -> list[Difference]:
    """B − A per task × variety over the items both runs answered, with a paired bootstrap
    CI (items resampled once, both runs scored on the same resample)."""
    if run_a.manifest["suite"]["name"] != run_b.manifest["suite"]["name"]:
        raise RunError(f"cannot compare runs of different suites: "
                       f"{run_a.manifest['suite']['ident']} and {run_b.manifest['suite']['ident']}")
    records_b = {(r["task"], r["id"]): r for r in reparse(run_b.manifest, run_b.predictions())}
    paired: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for rec_a in reparse(run_a.manifest, run_a.predictions()):
        rec_b = records_b.get((rec_a["task"], rec_a["id"]))
        if rec_b is None or rec_a.get("skipped") or rec_b.get("skipped"):
            continue
        for variety in (rec_a["variety"], "all"):
            paired.setdefault((rec_a["task"], variety), []).append((rec_a, rec_b))
    seed, n_boot = run_a.manifest["seed"], run_a.manifest["bootstrap"]
    order = {code: i for i, code in enumerate([*varieties.registry(), "all"])}
    out = []
    for (task, variety), pairs in sorted(paired.items(),
                                         key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))):
        spec = run_a.manifest["tasks"][task]["spec"]
        index = {label: i for i, label in enumerate(spec["labels"])}

        true_b, pred_b, true_a, pred_a = (
            np.array([index.get(p[side].get(key) or "", MISSING) for p in pairs], dtype=np.int32)
            for side, key in ((1, "reference"), (1, "parsed"), (0, "reference"), (0, "parsed"))
        )
        arrays = (true_b, pred_b, true_a, pred_a)
        for metric in spec["metrics"]:
            rng = np.random.default_rng([seed, stable_id(variety), stable_id(metric), 1])
            result = paired_delta(metric, arrays, n_boot, rng)
            value = result["value"]
            a_value = _metric_value(metric, arrays[2], arrays[3])
            out.append(Difference(
                task=task, variety=variety, metric=metric, n_pairs=len(pairs),
                a=a_value, b=None if value is None or a_value is None else a_value + value,
                delta=value, ci=_pair(result["ci"]), significant=result["significant"],
            ))
    if not out:
        raise RunError("the two runs share no scored item; compare runs of the same suite "
                       "and split")
    return out


def _metric_value(metric: str, true: np.ndarray, pred: np.ndarray) -> float | None:
    value = metric_with_ci(metric, true, pred, 1, np.random.default_rng(0))["value"]
    return None if value is None else float(value)
