"""Paired comparison of two runs of the same suite: B − A per task, variety and metric,
over the items both runs answered."""

from __future__ import annotations

from dataclasses import dataclass

from .. import tasks, varieties
from ..errors import RunError
from ..records import PredictionRecord
from ..runs.rundir import Run
from ..runs.scoring import reparse
from ..stats.bootstrap import relabel, stable_id


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
    if run_a.manifest.suite.name != run_b.manifest.suite.name:
        raise RunError(f"cannot compare runs of different suites: "
                       f"{run_a.manifest.suite.ident} and {run_b.manifest.suite.ident}")
    records_b = {(r["task"], r["id"]): r for r in reparse(run_b.manifest, run_b.predictions())}
    paired: dict[str, list[tuple[PredictionRecord, PredictionRecord]]] = {}
    for rec_a in reparse(run_a.manifest, run_a.predictions()):
        rec_b = records_b.get((rec_a["task"], rec_a["id"]))
        if rec_b is None or rec_a.get("skipped") or rec_b.get("skipped") or \
                rec_a["task"] not in run_b.manifest.tasks:
            continue
        paired.setdefault(rec_a["task"], []).append((rec_a, rec_b))
    seed, n_boot = run_a.manifest.seed, run_a.manifest.bootstrap
    order = list(varieties.registry())
    out = []
    for task, pairs in sorted(paired.items()):
        task_type = tasks.for_spec(run_a.manifest.tasks[task].spec)
        present = sorted({a["variety"] for a, _ in pairs},
                         key=lambda c: order.index(c) if c in order else len(order))
        for variety in [*present, "all"]:
            subset = [p for p in pairs if variety in ("all", p[0]["variety"])]
            records = relabel([a for a, _ in subset], lambda _: "A") + \
                relabel([b for _, b in subset], lambda _: "B")
            scored = task_type.score(records, "A", n_boot=n_boot,
                                     seed=seed + stable_id(variety) % 1000)
            for metric in task_type.selected_metrics():
                a, b = scored["A"].metrics.get(metric), scored["B"].metrics.get(metric)
                delta = scored["B"].deltas.get(metric)
                out.append(Difference(  # B − A
                    task=task, variety=variety, metric=metric, n_pairs=len(subset),
                    a=a.value if a else None, b=b.value if b else None,
                    delta=delta.value if delta else None, ci=delta.ci if delta else None,
                    significant=bool(delta and delta.significant),
                    higher_is_better=task_type.higher_is_better(metric)))
    if not out:
        raise RunError("the two runs share no scored item; compare runs of the same suite "
                       "and split")
    return out
