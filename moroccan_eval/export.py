"""Exports of runs to open formats another tool can read: scores (one flat row per run ×
task × variety × metric) and predictions, as CSV, Parquet, JSON or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, TypedDict

from .io import atomic_path
from .runs.rundir import Run

Format = Literal["csv", "parquet", "json", "jsonl"]


class ScoreRow(TypedDict):
    run_id: str
    model: str
    suite: str
    task: str
    variety: str
    metric: str
    n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    delta_significant: bool | None
    p50_ms: float | None
    p95_ms: float | None
    cost_per_1k_mad: float | None
    cost_per_1k_usd: float | None
    signature: str


def score_rows(runs: Iterable[Run]) -> list[ScoreRow]:
    """One flat row per run × task × variety × metric (for CSV/Parquet/pandas)."""
    rows: list[ScoreRow] = []
    for run in runs:
        for task, entry in run.scores.tasks.items():
            usage = entry.usage
            for variety, values in entry.all_varieties():
                for metric in entry.metrics:
                    score, delta = values.metrics.get(metric), values.deltas.get(metric)
                    ci = score.ci if score and score.ci else (None, None)
                    dci = delta.ci if delta and delta.ci else (None, None)
                    rows.append({
                        "run_id": run.manifest.run_id,
                        "model": run.model,
                        "suite": run.manifest.suite.ident,
                        "task": task,
                        "variety": variety,
                        "metric": metric,
                        "n": values.n,
                        "value": score.value if score else None,
                        "ci_low": ci[0],
                        "ci_high": ci[1],
                        "delta": delta.value if delta else None,
                        "delta_ci_low": dci[0],
                        "delta_ci_high": dci[1],
                        "delta_significant": delta.significant if delta else None,
                        "p50_ms": usage.p50_ms,
                        "p95_ms": usage.p95_ms,
                        "cost_per_1k_mad": usage.cost_per_1k["MAD"],
                        "cost_per_1k_usd": usage.cost_per_1k["USD"],
                        "signature": entry.signature,
                    })
    return rows


def prediction_rows(runs: Iterable[Run]) -> Iterator[dict[str, object]]:
    for run in runs:
        for record in run.predictions():
            yield {"run_id": run.manifest.run_id, "model": run.model, **record}


def export(runs: list[Run], what: Literal["scores", "predictions"], fmt: Format,
           out: Path) -> int:
    """Write scores or predictions of runs as CSV, Parquet, JSON or JSONL; returns rows."""
    import pandas as pd

    rows = score_rows(runs) if what == "scores" else list(prediction_rows(runs))
    frame = pd.DataFrame(rows)
    if what == "predictions" and "meta" in frame:
        frame["meta"] = frame["meta"].map(lambda m: json.dumps(m, ensure_ascii=False))
    with atomic_path(out) as tmp:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "json":
            frame.to_json(tmp, orient="records", force_ascii=False, indent=2)
        else:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    return len(frame)
