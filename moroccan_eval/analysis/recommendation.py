"""The recommendation: the cheapest (then smallest) model that meets a team's
constraints, and for every other model the first constraint it fails.

The report's recommendation block and ``moroccan-eval recommend`` both call
:func:`recommend`, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .. import varieties
from ..costing import Currency
from ..errors import ConfigError, did_you_mean
from .summary import ModelSummary


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
